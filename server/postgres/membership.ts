/**
 * Which servers on the shared database are alive: each writes a heartbeat
 * (its row in `servers`, seen_at by the database's clock, so the servers'
 * own clocks need not agree) every second and reads back the rows seen
 * within the last few seconds. The list decides who answers which client
 * (dhcp/decide/peers.ts). A server that cannot reach the database keeps the
 * last list it read: it commits nothing meanwhile, so it answers nothing.
 */
import { DatabaseConnection } from './connection.js';
import { asDatabaseError, migrateDatabase } from './database.js';

const migrations: readonly string[][] = [
  [
    `CREATE TABLE servers (
       id TEXT NOT NULL PRIMARY KEY,
       started_at TIMESTAMPTZ NOT NULL,
       seen_at TIMESTAMPTZ NOT NULL
     )`,
  ],
];

export const serversSchemaVersion = migrations.length;

export interface MembershipOptions {
  /** This server's id: its address on the served segment (its DHCP server identifier). */
  id: string;
  /** How often the heartbeat is written; default 1000 ms. */
  heartbeatMs?: number;
  /** A server whose heartbeat is older than this is gone; default 3000 ms. */
  goneAfterMs?: number;
  /** The list changed: the ids that came and went. */
  onChange?: (live: readonly string[], came: readonly string[], went: readonly string[]) => void;
  onProblem?: (message: string, error: unknown) => void;
}

export class ServerMembership {
  private current: readonly string[];
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private closed = false;
  private failing = false;

  private constructor(
    /** Connected again at the next beat when it was lost. */
    private readonly client: DatabaseConnection,
    private readonly options: MembershipOptions,
  ) {
    this.current = [options.id];
  }

  /** The database's URL without its password. */
  get database(): string {
    return this.client.database;
  }

  /** Registers this server and reads who else is alive; then beats every heartbeatMs. Throws PostgresDatabaseError. */
  static async open(url: string, options: MembershipOptions): Promise<ServerMembership> {
    const client = new DatabaseConnection(url, 'rackboot heartbeat', 2000);
    try {
      await migrateDatabase(client, client.database, 'servers', migrations);
      await client.query(
        'INSERT INTO servers (id, started_at, seen_at) VALUES ($1, now(), now()) ON CONFLICT (id) DO UPDATE SET started_at = now(), seen_at = now()',
        [options.id],
      );
    } catch (error) {
      await client.end();
      throw asDatabaseError(client.database, error);
    }
    const membership = new ServerMembership(client, options);
    await membership.beat();
    membership.schedule();
    return membership;
  }

  /** The live servers' ids, sorted; this server's always among them. */
  live(): readonly string[] {
    return this.current;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.beating;
    // Leave at once rather than after goneAfterMs: the others take over this server's clients now.
    await this.client.query('DELETE FROM servers WHERE id = $1', [this.options.id]).catch(() => undefined);
    await this.client.end();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.beating = this.beat().finally(() => {
        this.beating = undefined;
        this.schedule();
      });
    }, this.options.heartbeatMs ?? 1000);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      // An upsert: the row comes back should another server's cleanup or a restart have raced it away.
      await this.client.query('INSERT INTO servers (id, started_at, seen_at) VALUES ($1, now(), now()) ON CONFLICT (id) DO UPDATE SET seen_at = now()', [
        this.options.id,
      ]);
      const rows = await this.client.query<{ id: string }>("SELECT id FROM servers WHERE seen_at > now() - $1 * interval '1 millisecond' ORDER BY id", [
        this.options.goneAfterMs ?? 3000,
      ]);
      const live = [...new Set([this.options.id, ...rows.rows.map((row) => row.id)])].sort();
      this.failing = false;
      if (live.join(' ') !== this.current.join(' ')) {
        const came = live.filter((id) => !this.current.includes(id));
        const went = this.current.filter((id) => !live.includes(id));
        this.current = live;
        this.options.onChange?.(live, came, went);
      }
    } catch (error) {
      if (!this.failing) this.options.onProblem?.(`heartbeat not written to ${this.database}`, asDatabaseError(this.database, error));
      this.failing = true;
    }
  }
}
