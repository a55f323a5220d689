import pickle, statistics, sys, tempfile, time
import pyarrow as pa
from batchcorder import StreamCache
table = pa.table({"id": range(200_000)})
cache = StreamCache(table.to_reader(max_chunksize=100), disk_path=tempfile.mkdtemp(), disk_capacity=1 << 30)
cache.ingest_all()
view = pickle.loads(pickle.dumps(cache))
n = view.num_batches
for i in range(n): view.batch(i)
def run():
    t = time.perf_counter()
    for i in range(n): view.batch(i)
    return (time.perf_counter() - t) / n * 1e6
def run_iter():
    t = time.perf_counter()
    for b in view: pass
    return (time.perf_counter() - t) / n * 1e6
print(sys.argv[1], f"batch(i): median {statistics.median(run() for _ in range(7)):.2f} us/batch; iteration: {statistics.median(run_iter() for _ in range(7)):.2f} us/batch ({n} batches)")
cache.close()
