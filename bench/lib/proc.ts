// What /proc tells about a process tree: CPU time and resident memory of a
// daemon together with every process below it (worker children, programs it
// runs).  The only way to see what another process spent on a round.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const PAGE_BYTES = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;

interface Stat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime + cutime + cstime in µs: the process, and the children it has reaped. */
  readonly cpu: number;
  readonly rssBytes: number;
  /** Minor page faults: the process's, and those of the children it has reaped. */
  readonly minorFaults: number;
}

/** Fields of /proc/PID/stat, or undefined when the process is gone. */
function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces: count fields after its ')'.
  // Field 3 (state) is index 0: ppid 4, minflt 10, cminflt 11, utime 14, stime 15, cutime 16, cstime 17, rss 24.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(f[i]), 0);
  return { pid, ppid: Number(f[1]), cpu: (ticks * 1e6) / TICKS_PER_SECOND, rssBytes: Number(f[21]) * PAGE_BYTES, minorFaults: Number(f[7]) + Number(f[8]) };
}

/** `pid` and every live process below it. */
export function processTree(pid: number): Stat[] {
  const all: Stat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat !== undefined) all.push(stat);
  }
  const tree: Stat[] = [];
  const wanted = new Set([pid]);
  // parents before children is not guaranteed by /proc order: repeat until stable (bounded by depth)
  for (let depth = 0; depth < 8; depth++) {
    let grew = false;
    for (const s of all) {
      if (!wanted.has(s.pid) && wanted.has(s.ppid)) {
        wanted.add(s.pid);
        grew = true;
      }
    }
    if (!grew) break;
  }
  for (const s of all) if (wanted.has(s.pid)) tree.push(s);
  return tree;
}

/**
 * CPU µs used so far by `pid` and everything below it: live processes'
 * user+system time plus what reaped children (exited workers, spawned
 * programs) have used.
 */
export function treeCpu(pid: number): number {
  return processTree(pid).reduce((sum, s) => sum + s.cpu, 0);
}

/**
 * Minor page faults so far of `pid` and everything below it (as treeCpu).
 * A relay that touches fresh memory for every mail pays for each page in
 * the kernel, at a price that varies a lot between machines (and on a
 * virtual machine over time).
 */
export function treeFaults(pid: number): number {
  return processTree(pid).reduce((sum, s) => sum + s.minorFaults, 0);
}

/** Resident bytes of `pid` and every live process below it (shared pages counted in each). */
export function treeRss(pid: number): number {
  return processTree(pid).reduce((sum, s) => sum + s.rssBytes, 0);
}

/** Pids of `pid` and every live process below it. */
export function treePids(pid: number): number[] {
  return processTree(pid).map((s) => s.pid);
}

/** The machine's CPU time so far (all CPUs, /proc/stat), in ticks: busy (everything but idle and iowait) and in all; and how many CPUs it has. */
export function machineCpu(): { readonly busy: number; readonly total: number; readonly cpus: number } {
  const lines = readFileSync('/proc/stat', 'latin1').split('\n');
  const fields = lines[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((sum, t) => sum + t, 0);
  return { busy: total - fields[3]! - fields[4]!, total, cpus: lines.filter((l) => /^cpu\d/.test(l)).length };
}
