#pragma once
// Training metrics (step, loss, lr, grad_norm, tokens_per_s, mfu, ...) logged two ways in a run's output directory:
//
//   metrics.jsonl   one JSON object per line, {"step": 12, "loss": 2.31, "lr": 0.0003, ...}, keys in the caller's
//                   order, "step" first; NaN and +-Inf are written as null (JSON has no NaN). Each line goes to the
//                   kernel in one write(), so readers (tail -f, pandas.read_json(lines=True)) see whole lines only.
//                   Opening an existing file appends (resumed runs); a last line without its '\n' (a crash, a full
//                   disk) is cut away first, so the file stays parseable line by line.
//   tensorboard/    a TensorBoard event file, events.out.tfevents.<unix_seconds>.<hostname>, written directly: no
//                   TensorFlow, no protobuf library. Each step's scalars are one record, handed to the kernel at once,
//                   so TensorBoard shows progress live. A resumed run starts a new file in the same directory;
//                   TensorBoard reads all of them.
//
// Only one process writes these files (rank 0 of a distributed run); nothing here locks them.
//
// Event file format (TensorBoard's summary/writer/record_writer.py, compat/proto/event.proto and summary.proto):
//   record  = uint64 length (LE) | uint32 masked_crc32c(the 8 length bytes) | data[length] | uint32 masked_crc32c(data)
//   masked  = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32), crc = CRC-32C (Castagnoli, reflected 0x82F63B78)
//   data    = a serialized Event:   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
//                                             Summary summary = 5; }
//                                   Summary { repeated Value value = 1; }
//                                   Value   { string tag = 1; float simple_value = 2; }
//   The first record of a file is Event{wall_time, file_version: "brain.Event:2"}. Every later one is
//   Event{wall_time, step, Summary{one Value per scalar}}. Wire bytes of one scalar (step 7, "loss" = 1.5):
//     09 <f64 LE wall_time> 10 07 2A 0D | 0A 0B | 0A 04 'l' 'o' 's' 's' 15 <f32 LE 1.5>
// Values are stored as float32 (simple_value), as TensorBoard does.
//
// Errors (a directory that cannot be created, a file that cannot be opened or written, a corrupt event file) throw
// granite::Error naming the file. A failed write is rolled back (the file is truncated to its previous end) where
// the filesystem allows, so no half record or half line is left behind.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace granite {

// Named values of one step, in the order they are to be written.
using Scalars = std::vector<std::pair<std::string, double>>;

// Seconds since the Unix epoch, with sub-second precision (an Event's wall_time).
double unix_time_now();

// One TensorBoard event file in `dir` (created with its parents if missing).
class TensorBoardWriter {
 public:
  // Creates a new file (never overwrites one: a name taken already gets a ".1", ".2", ... suffix) and writes the
  // file_version record.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One record: Event{wall_time, step, Summary{(tag, float(value)) for each scalar}}. Nothing when `scalars` is
  // empty. Tags must be non-empty.
  void add_scalars(int64_t step, const Scalars& scalars, double wall_time = unix_time_now());
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// metrics.jsonl-style log at `path` (parent directories created if missing); appends to an existing file.
class MetricsJsonl {
 public:
  explicit MetricsJsonl(const std::string& path);
  ~MetricsJsonl();
  MetricsJsonl(const MetricsJsonl&) = delete;
  MetricsJsonl& operator=(const MetricsJsonl&) = delete;

  // One line {"step": step, name: value, ...}. Names must be non-empty, distinct and not "step".
  void write(int64_t step, const Scalars& values);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// What the trainer uses: output_dir/metrics.jsonl and an event file in output_dir/tensorboard/.
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& output_dir);
  void log(int64_t step, const Scalars& values);
  const MetricsJsonl& jsonl() const { return jsonl_; }
  const TensorBoardWriter& tensorboard() const { return tensorboard_; }

 private:
  MetricsJsonl jsonl_;
  TensorBoardWriter tensorboard_;
};

// CRC-32C (Castagnoli). `crc` chains calls: crc32c(b, nb, crc32c(a, na)) == crc32c of a followed by b.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
// TFRecord's masked CRC: ((c >> 15) | (c << 17)) + 0xa282ead8 with c = crc32c(data).
uint32_t masked_crc32c(const void* data, size_t size);

// The serialized Event proto of one add_scalars() call (the data of its record), exposed for tests.
std::string encode_scalar_event(int64_t step, const Scalars& scalars, double wall_time);

// One scalar read back from an event file.
struct ScalarEvent {
  int64_t step;
  std::string tag;
  double value;  // the stored float32, widened
  double wall_time;
};

// Reads an event file back: every record's framing and both CRCs are verified (an error names the file and the byte
// offset of the bad record; a file cut inside a record is an error too), and the simple_value scalars are returned
// in file order. Fields and values of other kinds (images, tensors, ...) are skipped. `file_version`, if given,
// receives the file_version of the file ("" if no record has one).
std::vector<ScalarEvent> read_tensorboard_scalars(const std::string& path, std::string* file_version = nullptr);

}  // namespace granite
