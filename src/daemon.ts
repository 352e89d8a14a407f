// The daemon: load the config (which creates the listeners), then serve
// every accepted connection through the pipeline until a shutdown signal.
import { Subject, finalize, mergeMap, take, takeUntil } from 'rxjs';
import { logPlain } from './log.js';
import { ConfigError, LuaEngine, type ListenRequest } from './lua/engine.js';
import { accepted$, bindListener, type Listener } from './streams/listener.js';
import { signalNumber, signals$ } from './streams/signals.js';
import { withPeerCredentials } from './operators/peer-credentials.js';
import { serveClient } from './operators/serve-client.js';
import { createMailLogger, type MailLogger } from './operators/pond-log.js';

export interface DaemonOptions {
  readonly configPath: string;
}

/** Runs until shutdown; resolves with the exit status. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const listeners: Listener[] = [];
  const listen = (request: ListenRequest): void => {
    if (request.target.kind === 'systemd') {
      logPlain('No systemd socket');
      return;
    }
    listeners.push(bindListener(request.target, request.handler, request.maxSize));
  };
  let engine: LuaEngine;
  let mailLog: MailLogger | undefined;
  try {
    engine = await LuaEngine.load(options.configPath, { listen });
    if (listeners.length === 0) throw new ConfigError('No QMQP listeners configured');
    const logServer = engine.finishStartup();
    mailLog = logServer === undefined ? undefined : createMailLogger(logServer);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    logPlain(e.message);
    for (const l of listeners) l.server.close();
    return 1;
  }

  const shutdown$ = new Subject<void>();
  const stop$ = signals$('SIGTERM', 'SIGINT', 'SIGQUIT').pipe(take(1));
  return new Promise<number>((resolve) => {
    stop$.subscribe((name) => {
      logPlain(`caught signal ${signalNumber(name)}, shutting down (pid=${process.pid})`);
      shutdown$.next();
      shutdown$.complete();
    });
    accepted$(listeners)
      .pipe(
        takeUntil(shutdown$),
        withPeerCredentials(),
        mergeMap((client) => serveClient(client, { policy: engine, mailLog, shutdown$ })),
        finalize(() => resolve(0)),
      )
      .subscribe();
  });
}
