#pragma once
// safetensors (https://github.com/huggingface/safetensors, README "Format"): 8-byte little-endian u64 header length N,
// N bytes of UTF-8 JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the byte buffer. Offsets are relative to the buffer start; the buffer must be covered exactly (no holes, no
// overlaps). Reading memory-maps the file and validates everything the spec requires before any tensor is touched;
// nothing here knows about models.
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace granite {

struct SafetensorsEntry {
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data buffer
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Every error names the file and, where there is one, the tensor and the bad value.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> keys() const;  // sorted
  bool contains(const std::string& key) const { return entries_.count(key) != 0; }
  const SafetensorsEntry& entry(const std::string& key) const;
  // A CPU tensor viewing the mapped bytes (zero copy; it keeps the mapping alive). Read-only by contract: copy it
  // (e.g. param.copy_(t)) before modifying.
  torch::Tensor tensor(const std::string& key) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the byte buffer
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<SafetensorsFile> self_;
};

// Writes tensors (any device/dtype of F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL; non-contiguous is fine) atomically.
// The header is space-padded to a multiple of 8 bytes, as the reference writer does. Names must be unique.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor into owned memory.
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path);

// "F32" <-> torch::kFloat32 ...; unknown names / unsupported types raise.
torch::ScalarType safetensors_dtype_from_string(const std::string& name);
std::string safetensors_dtype_to_string(torch::ScalarType dtype);

}  // namespace granite
