"""What the benchmark scripts share: best-of-N and median timing, the engines, the command line, and the table."""
import argparse, statistics, time
import torch

def call_times(fn, repeat):
    "Seconds of each of `repeat` calls, after one warm-up call (which also fills prepack caches)."
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return times

def best_time(fn, repeat):
    "Fastest of `repeat` calls."
    return min(call_times(fn, repeat))

def median_time(fn, repeat):
    "Median of `repeat` calls."
    return statistics.median(call_times(fn, repeat))

def engines():
    return [e for e in torch.backends.quantized.supported_engines if e != 'none']

def parse_args(doc, argv=None):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument('--repeat', type=int, default=20)
    ap.add_argument('--engine', default='x86', help='engine whose semantics qnb reproduces in the timed call')
    return ap.parse_args(argv)

def header(first_column, engine):
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; qnb reproduces engine {engine!r}")
    print(f"{first_column:<32}{'qnb ms':>9}" + ''.join(f"{e + ' ms':>12}" for e in engines()) + f"{'qnb/fastest':>13}")

def row(name, t_qnb, t_torch):
    "One line: qnb's time, each engine's, and qnb / fastest engine."
    print(f"{name:<32}{t_qnb * 1e3:>9.3f}" + ''.join(f"{t * 1e3:>12.3f}" for t in t_torch.values())
          + f"{t_qnb / min(t_torch.values()):>12.1f}x")
