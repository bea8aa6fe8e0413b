/**
 * Latency histograms (HDR, microseconds, 3 significant digits) and the
 * clock every latency is measured on: `nowUs()`, microseconds of the
 * system's monotonic clock (CLOCK_MONOTONIC through process.hrtime), one
 * clock for every process and thread of the machine, so a timestamp put
 * in a postback by one process (the harness's sender, BullMQ's producer)
 * and read by another (the sink) agree. Not the epoch: each process's
 * `performance.timeOrigin` is the wall clock when it started, so
 * `timeOrigin + performance.now()` differs between processes by however
 * far the wall clock was stepped between their starts (a full run once
 * put BullMQ's producer 7 s ahead of the sink: every latency read as
 * negative, the rate as 100k/s). The sink and the harness never compare
 * these with the service's wall-clock times.
 */
import hdr from 'hdr-histogram-js';

export type Histogram = ReturnType<typeof hdr.build>;

export function createHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 64,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Percentiles in milliseconds (from a µs histogram). */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

const ms = (us: number) => Math.round(us) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

export function recordUs(h: Histogram, us: number): void {
  h.recordValue(us < 0 ? 0 : Math.round(us));
}
