// A child process inside its own cgroup v1 memory (limit) and cpuacct groups, so that its peak
// memory is measured under the Pod's limit and an OOM kill shows, and its CPU is its own.
// Needs root and the v1 controllers (these machines have them); otherwise runs it plainly.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MEMORY = '/sys/fs/cgroup/memory';
const CPUACCT = '/sys/fs/cgroup/cpuacct';
const CPU = '/sys/fs/cgroup/cpu';

export const cgroupsAvailable = (): boolean => process.getuid?.() === 0 && existsSync(join(MEMORY, 'cgroup.procs')) && existsSync(join(CPUACCT, 'cgroup.procs'));

export interface Usage {
  /** Peak of the process's own resident set (VmHWM), MiB. */
  peakRssMiB: number;
  /** Peak memory charged to the cgroup (RSS and page cache), MiB; undefined without cgroups. */
  cgroupPeakMiB: number | undefined;
  /** CPU time of the process and its children, ms. */
  cpuMs: number;
  /** The memory cgroup's OOM kills. */
  oomKills: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export interface Limits {
  memoryBytes?: number;
  /** CPU cores (CFS quota), e.g. 0.5. */
  cpus?: number;
}

export class Confined {
  readonly child: ChildProcess;
  readonly #dirs: string[];
  readonly #memory: string | undefined;
  readonly #cpuacct: string | undefined;
  #peakRssKiB = 0;
  #cpuFallbackMs = 0;
  readonly #sampler: NodeJS.Timeout;
  readonly exited: Promise<Usage>;

  constructor(name: string, command: string, args: string[], limits: Limits, options: SpawnOptions) {
    const id = `fleet-bench-${name}-${process.pid}`;
    this.#dirs = [];
    if (cgroupsAvailable()) {
      this.#memory = this.#make(MEMORY, id);
      this.#cpuacct = this.#make(CPUACCT, id);
      if (limits.memoryBytes) writeFileSync(join(this.#memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      if (limits.cpus && existsSync(join(CPU, 'cgroup.procs'))) {
        const cpu = this.#make(CPU, id);
        writeFileSync(join(cpu, 'cpu.cfs_period_us'), '100000');
        writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * 100_000)));
      }
    }
    // The shell joins the groups, then becomes the command (same pid): nothing runs outside them.
    const join_ = this.#dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join('; ');
    this.child = spawn('/bin/sh', ['-c', `${join_ ? `${join_}; ` : ''}exec "$0" "$@"`, command, ...args], options);
    this.#sampler = setInterval(() => this.#sample(), 100);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (exitCode, signal) => {
        clearInterval(this.#sampler);
        resolve(this.#finish(exitCode, signal));
      });
    });
  }

  #make(root: string, id: string): string {
    const dir = join(root, id);
    if (!existsSync(dir)) mkdirSync(dir);
    this.#dirs.push(dir);
    return dir;
  }

  #sample(): void {
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) this.#peakRssKiB = Math.max(this.#peakRssKiB, Number(hwm[1]));
      const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // utime + stime (fields 14, 15), in clock ticks (100/s on Linux).
      this.#cpuFallbackMs = ((Number(stat[11]) + Number(stat[12])) * 1000) / 100;
    } catch {
      // gone
    }
  }

  #finish(exitCode: number | null, signal: NodeJS.Signals | null): Usage {
    const read = (dir: string | undefined, file: string) => (dir ? readFileSync(join(dir, file), 'utf8') : undefined);
    const peak = read(this.#memory, 'memory.max_usage_in_bytes');
    const oom = /oom_kill (\d+)/.exec(read(this.#memory, 'memory.oom_control') ?? '');
    const cpuNs = read(this.#cpuacct, 'cpuacct.usage');
    const usage: Usage = {
      peakRssMiB: this.#peakRssKiB / 1024,
      cgroupPeakMiB: peak ? Number(peak) / 1024 / 1024 : undefined,
      cpuMs: cpuNs ? Number(cpuNs) / 1e6 : this.#cpuFallbackMs,
      oomKills: oom ? Number(oom[1]) : 0,
      exitCode,
      signal,
    };
    for (const dir of this.#dirs.reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        // a straggler keeps it; harmless
      }
    }
    return usage;
  }
}
