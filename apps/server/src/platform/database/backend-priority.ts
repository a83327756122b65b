import os from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';

/**
 * Batch work's database connections run at a lower CPU priority (docs/limits.md, "Batch
 * connections"). Each PostgreSQL connection is a backend process of its own; when the server
 * runs on this machine, raising that process's nice value lets the kernel run interactive
 * requests' backends first whenever both want a core — preempting a batch statement midway,
 * which the batch share's pacing between transactions cannot.
 *
 * Only for servers on this machine whose process ids this process sees: a backend's id from
 * another host or container would name an unrelated local process. Raising a nice value needs
 * no privilege for one's own processes (or, as root, the postgres user's), but lowering it
 * again does, so such connections stay in pools of their own and never serve interactive work.
 * Best effort: a refused change is logged once and the work runs at normal priority.
 */
export function lowerBackendPriority(pool: pg.Pool, nice: number, log: Logger): void {
  let warned = false;
  pool.on('connect', (client) => {
    // pg-pool emits 'connect' before it hands a new client out, so no statement runs before this.
    const backendPid = (client as pg.PoolClient & { processID: number | null }).processID;
    if (backendPid === null) return;
    try {
      os.setPriority(backendPid, nice);
    } catch (error) {
      if (!warned) log.warn({ err: error, backendPid, nice }, 'batch database connections run at normal CPU priority');
      warned = true;
    }
  });
}
