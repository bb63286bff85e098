/**
 * Connections to the shared database that come back by themselves: a
 * restart of PostgreSQL, a cut link or a failover must not need a restart
 * of rackboot. A query on a lost connection fails (the caller keeps what it
 * could not write, or answers nothing); the next query connects again. A
 * listener reconnects on its own, LISTENs again and tells its owner, who
 * reads everything again: notifications sent meanwhile are lost.
 */
import type pg from 'pg';
import { asDatabaseError, connectDatabase, describeDatabaseUrl } from './database.js';

export class DatabaseConnection {
  readonly database: string;
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;

  constructor(
    private readonly url: string,
    private readonly applicationName: string,
    private readonly connectTimeoutMs = 5000,
  ) {
    this.database = describeDatabaseUrl(url);
  }

  /** The server process of the current connection (a notification from it is this connection's own). */
  get processId(): number | undefined {
    return (this.client as unknown as { processID?: number } | undefined)?.processID;
  }

  /** Runs a query, connecting first when there is no connection; failures come back as PostgresDatabaseError. */
  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const client = await this.connection();
    try {
      return await client.query<R>(text, values);
    } catch (error) {
      const failure = asDatabaseError(this.database, error);
      if (failure.code === 'UNREACHABLE') this.drop(client);
      throw failure;
    }
  }

  async end(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private connection(): Promise<pg.Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    this.connecting ??= connectDatabase(this.url, { applicationName: this.applicationName, connectTimeoutMs: this.connectTimeoutMs })
      .then((client) => {
        client.on('error', () => this.drop(client));
        this.client = client;
        return client;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  private drop(client: pg.Client): void {
    if (this.client === client) this.client = undefined;
    void client.end().catch(() => undefined);
  }
}

export interface ListenerOptions {
  applicationName: string;
  onNotification: (payload: string, processId: number) => void;
  /** Listening again after a lost connection: whatever was notified meanwhile is lost, so read everything again. */
  onReconnected: () => void;
  onProblem?: (message: string, error: unknown) => void;
}

/** LISTEN on a channel, again and again: after a lost connection it reconnects every second until it can. */
export class DatabaseListener {
  private client: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private lost = false;

  private constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly options: ListenerOptions,
  ) {}

  /** Listens now; throws PostgresDatabaseError when it cannot (the caller cannot start without it). */
  static async open(url: string, channel: string, options: ListenerOptions): Promise<DatabaseListener> {
    const listener = new DatabaseListener(url, channel, options);
    await listener.listen();
    return listener;
  }

  async end(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    const client = await connectDatabase(this.url, { applicationName: this.options.applicationName, connectTimeoutMs: 2000 });
    client.on('notification', (message) => {
      if (message.payload !== undefined) this.options.onNotification(message.payload, message.processId);
    });
    client.on('error', (error) => {
      if (this.client !== client) return;
      this.client = undefined;
      void client.end().catch(() => undefined);
      if (!this.lost) this.options.onProblem?.(`listening on ${this.channel} stopped: ${error.message}; trying again every second`, error);
      this.lost = true;
      this.again();
    });
    try {
      await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
  }

  private again(): void {
    if (this.closed || this.retry !== undefined) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.listen().then(
        () => {
          this.lost = false;
          this.options.onReconnected();
        },
        () => this.again(),
      );
    }, 1000);
    this.retry.unref();
  }
}
