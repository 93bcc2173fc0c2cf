// What the kubelet keeps of a container's output (stdout and stderr, interleaved, as the
// container runtime writes its log file), served through pods/log.
import { EventEmitter } from 'node:events';
import type { ContainerLog, PodLogSource } from '../apiserver/pod-log.ts';

class Buffered extends EventEmitter implements ContainerLog {
  private readonly chunks: Buffer[] = [];
  ended = false;

  append(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.emit('data', chunk);
  }

  end(): void {
    this.ended = true;
    this.emit('end');
  }

  text(): Buffer {
    return Buffer.concat(this.chunks);
  }

  subscribe(onData: (chunk: Buffer) => void, onEnd: () => void): () => void {
    this.on('data', onData);
    this.on('end', onEnd);
    return () => {
      this.off('data', onData);
      this.off('end', onEnd);
    };
  }
}

export class Logs {
  private readonly byContainer = new Map<string, Buffered>();

  open(namespace: string, pod: string, container: string): Buffered {
    const key = `${namespace}/${pod}/${container}`;
    let log = this.byContainer.get(key);
    if (!log) this.byContainer.set(key, (log = new Buffered()));
    return log;
  }

  readonly source: PodLogSource = (namespace, pod, container) => this.byContainer.get(`${namespace}/${pod}/${container}`);
}
