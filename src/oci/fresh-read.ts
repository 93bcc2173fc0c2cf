// A read that began after you asked, shared. Before each OCI delete the sweep reads every
// Bundle and BundleDeployment afresh, so that a write acknowledged before the check is in the
// view the delete is judged against. Each check needs a read that *started after it was asked*
// (an older one may miss that write), but it need not be its own: checks that ask while a read
// is in flight all wait for the next one, which starts when that read ends. With N sweepers,
// one read serves up to N checks instead of one.

export class FreshRead<T> {
  readonly #read: () => Promise<T>;
  #inFlight: Promise<T> | undefined;
  /** The read that starts when the one in flight ends: for every check asked meanwhile. */
  #next: Promise<T> | undefined;
  /** Reads started (the tests count them). */
  started = 0;

  constructor(read: () => Promise<T>) {
    this.#read = read;
  }

  /** The result of a read that started after this call. */
  get(): Promise<T> {
    if (!this.#inFlight) return this.#start();
    // The read in flight began before this call and may miss what was written just before it.
    this.#next ??= this.#inFlight
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.#next = undefined;
        return this.#start();
      });
    return this.#next;
  }

  #start(): Promise<T> {
    this.started++;
    const read = this.#read();
    this.#inFlight = read;
    const done = () => {
      if (this.#inFlight === read) this.#inFlight = undefined;
    };
    read.then(done, done);
    return read;
  }
}
