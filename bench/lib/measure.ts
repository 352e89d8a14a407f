// One measurement: a closed-loop run of the C generator against one socket
// of one relay, with the relay's CPU time (its whole process tree) read from
// /proc before and after, and its resident memory afterwards.
import { send, type SendResult } from './load.js';
import { machineCpu, treeCpu, treeFaults, treeRss } from './proc.js';

export interface Sample extends SendResult {
  /** The relay's CPU µs per answered mail (all its processes, and the programs they ran). */
  readonly cpuPerMail: number;
  /** The relay's minor page faults per answered mail (all its processes). */
  readonly faultsPerMail: number;
  readonly rssBytes: number;
  /** The sink's CPU µs per answered mail (when the shot names it), measured like the relay's. */
  readonly sinkCpuPerMail: number;
  /** The whole machine's busy CPU time over the run divided by its length: how many cores were in use (by anything). */
  readonly busyCores: number;
}

export interface Shot {
  /** The process whose tree is charged (a relay, or the sink for the direct runs). */
  readonly pid: number;
  readonly socket: string;
  readonly clients: number;
  readonly messageBytes: number;
  readonly seconds: number;
  readonly mailsPerClient?: number;
  /** The C sink's pid, to charge its CPU per mail too. */
  readonly sinkPid?: number;
}

/** After a run the relay still closes sockets and collects garbage: that is part of its cost, and must not overlap the next run. */
const SETTLE_MS = 200;

export async function measure(shot: Shot): Promise<Sample> {
  const sinkCpu = (): number => (shot.sinkPid === undefined ? NaN : treeCpu(shot.sinkPid));
  const before = treeCpu(shot.pid);
  const faultsBefore = treeFaults(shot.pid);
  const sinkBefore = sinkCpu();
  const machineBefore = machineCpu();
  const result = await send(shot);
  const machineAfter = machineCpu();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const after = treeCpu(shot.pid);
  const faultsAfter = treeFaults(shot.pid);
  const perMail = (used: number): number => (result.mails > 0 ? used / result.mails : NaN);
  const busyCores = ((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * machineAfter.cpus;
  return { ...result, cpuPerMail: perMail(after - before), faultsPerMail: perMail(faultsAfter - faultsBefore), sinkCpuPerMail: perMail(sinkCpu() - sinkBefore), busyCores, rssBytes: treeRss(shot.pid) };
}

/** Resident bytes of `pid`'s tree sampled every `everyMs` while `during` runs, then for `afterMs` more. */
export async function rssWhile<T>(
  pid: number,
  everyMs: number,
  during: Promise<T>,
  afterMs: number,
): Promise<{ result: T; peak: number; atEnd: number; curve: { ms: number; bytes: number }[] }> {
  const started = Date.now();
  const curve: { ms: number; bytes: number }[] = [];
  let done = false;
  let endedAt = Infinity;
  void during.then(
    () => ((done = true), (endedAt = Date.now())),
    () => ((done = true), (endedAt = Date.now())),
  );
  let atEnd = 0;
  // bounded: by the `during` promise's own limit, then by afterMs
  while (!done || Date.now() < endedAt + afterMs) {
    const bytes = treeRss(pid);
    curve.push({ ms: Date.now() - started, bytes });
    if (done && atEnd === 0) atEnd = bytes;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  const result = await during;
  return { result, peak: Math.max(...curve.map((c) => c.bytes)), atEnd, curve };
}
