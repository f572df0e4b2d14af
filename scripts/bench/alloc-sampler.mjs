// Preload (`node --import`) for bench:ingest --alloc-profile: samples every allocation of the
// process from start to exit, the ones the collector took back too, and writes
// $ALLOC_PROFILE_DIR/alloc-PID.heapprofile at exit (`npx tsx scripts/bench/profile-summary.ts FILE`
// prints the sites). Plain JavaScript: Osprey runs from its release build, without tsx.
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.ALLOC_PROFILE_DIR ?? '.';
const session = new inspector.Session();
session.connect();
session.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
process.on('exit', () => {
  // An in-process session answers synchronously, so this runs within the exit handler.
  session.post('HeapProfiler.stopSampling', (err, r) => {
    if (err) console.error('alloc-sampler:', err);
    else fs.writeFileSync(path.join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(r.profile));
  });
});
