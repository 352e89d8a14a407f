// CPU time a process has used so far, from /proc/<pid>/stat: the only way
// to see how much CPU another process spent on a round.  User and system
// time apart: the system share is what the socket system calls cost.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// utime and stime are counted in clock ticks (usually 100 per second).
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

export interface CpuTime {
  /** Microseconds; resolution one clock tick (10 ms). */
  readonly user: number;
  readonly system: number;
}

export function processCpu(pid: number): CpuTime {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) may contain spaces: count fields after its ')'.
  // What follows starts at field 3 (state); utime is field 14, stime field 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const micros = (field: string | undefined): number => {
    const ticks = Number(field);
    if (!Number.isFinite(ticks)) throw new Error(`unexpected /proc/${pid}/stat: ${stat}`);
    return (ticks * 1e6) / TICKS_PER_SECOND;
  };
  return { user: micros(fields[11]), system: micros(fields[12]) };
}

/** CPU time used between `before` and `after`, per unit of work (e.g. per mail). */
export function cpuPer(before: CpuTime, after: CpuTime, units: number): CpuTime {
  return { user: (after.user - before.user) / units, system: (after.system - before.system) / units };
}

/** This process's CPU time (process.cpuUsage is also in microseconds). */
export function ownCpu(): CpuTime {
  return process.cpuUsage();
}
