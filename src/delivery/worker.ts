/**
 * What runs inside a delivery thread (a Piscina task): one BatchRunner per
 * thread, built from the settings the pool passes as workerData.
 */
import { workerData } from 'piscina';
import type { AttemptResult, BatchTask, WorkerSettings } from './attempt.js';
import { BatchRunner } from './batch-runner.js';
import { announceThreadReady } from './thread-ready.js';

const runner = new BatchRunner(workerData as WorkerSettings);
announceThreadReady();

export default function deliverBatch(task: BatchTask): Promise<AttemptResult[]> {
  return runner.run(task);
}
