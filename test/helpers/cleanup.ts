/**
 * Cleanup that runs however a test process ends: normally, on an uncaught
 * error, or killed by tap on a timeout (SIGTERM). Test helpers register
 * here the redis-servers they start and the temporary directories they
 * make, so no run leaves processes or files behind.
 */
const tasks = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const task of tasks) {
    try {
      task();
    } catch {
      // best effort: the next task still runs
    }
  }
  tasks.clear();
}

export function onExit(task: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', runAll);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        runAll();
        process.exit(128 + (signal === 'SIGTERM' ? 15 : 2));
      });
    }
  }
  tasks.add(task);
  return () => tasks.delete(task);
}
