// Caps the renders one replica runs at once. Rasterising a PNG takes a libuv thread for
// tens of milliseconds; unbounded, a burst of embeds would queue behind each other in the
// thread pool (delaying every other use of it) and hold all their buffers at once.
import { Code, ConnectError } from '@connectrpc/connect';
import { NOT_APPLIED_HEADER } from '../kit/rpc/server.js';

export class RenderLimiter {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly concurrency: number,
    /** Renders allowed to wait; beyond it a call is refused. */
    readonly queueMax: number,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(work: () => Promise<T> | T): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.queueMax) {
        // A render reads and changes nothing, so saying "not applied" lets the balanced
        // client hand it to another replica rather than fail it.
        throw new ConnectError('too many renders in progress on this replica', Code.Unavailable, { [NOT_APPLIED_HEADER]: '1' });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so running never overshoots.
      if (next) next();
      else this.running--;
    }
  }
}
