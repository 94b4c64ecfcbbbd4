#include "granite/train/train_config.h"

#include "granite/core/check.h"
#include "granite/core/file_status.h"

namespace granite {

namespace {

LoaderConfig loader_with_paths(const Json& j, const std::string& where, const std::string& base) {
  LoaderConfig c = loader_config_from_json(j, where);
  for (auto& s : c.sources)
    for (auto& p : s.paths) p = resolve_path(p, base);
  return c;
}

}  // namespace

TrainConfig train_config_from_json(const Json& j, const std::string& where, const std::string& base,
                                   const std::vector<std::string>& app_sections) {
  JsonReader r(j, where);
  TrainConfig c;
  r.ignore("_comment");
  for (const std::string& section : app_sections)
    if (const Json* value = r.raw(section)) c.app_sections[section] = *value;
  const bool app_data = c.app_sections.contains("data");
  c.model_config = resolve_path(r.optional<std::string>("model", ""), base);
  c.init_from = resolve_path(r.optional<std::string>("init_from", ""), base);
  GRANITE_CHECK(c.model_config.empty() != c.init_from.empty(), where,
                ": give exactly one of \"model\" (a model config: random initialisation) and \"init_from\" (a model "
                "directory)");
  c.tokenizer = resolve_path(r.required<std::string>("tokenizer"), base);
  if (!app_data) {
    const Json* data = r.raw("data");
    GRANITE_CHECK(data && data->is_object(), where, ": missing the \"data\" section");
    c.data = loader_with_paths(*data, where + ": data", base);
    if (const Json* eval = r.raw("eval_data"); eval && !eval->is_null())
      c.eval_data = loader_with_paths(*eval, where + ": eval_data", base);
  }
  if (const Json* o = r.raw("optimizer")) c.optimizer = optimizer_config_from_json(*o, where + ": optimizer");
  if (const Json* s = r.raw("schedule")) c.schedule = schedule_config_from_json(*s, where + ": schedule");
  if (const Json* t = r.raw("train")) {
    JsonReader tr(*t, where + ": train");
    c.steps = tr.optional<int64_t>("steps", c.steps);
    c.grad_accum = tr.optional<int64_t>("grad_accum", c.grad_accum);
    c.alpha = tr.optional<double>("alpha", c.alpha);
    c.seed = tr.optional<uint64_t>("seed", c.seed);
    c.document_mask = tr.optional<bool>("document_mask", c.document_mask);
    c.activation_checkpointing = tr.optional<bool>("activation_checkpointing", c.activation_checkpointing);
    c.neftune_alpha = tr.optional<double>("neftune_alpha", c.neftune_alpha);
    c.device = tr.optional<std::string>("device", c.device);
    c.dtype = tr.optional<std::string>("dtype", c.dtype);
    c.master_dtype = tr.optional<std::string>("master_dtype", c.master_dtype);
    c.sharding = tr.optional<std::string>("sharding", c.sharding);
    c.log_every = tr.optional<int64_t>("log_every", c.log_every);
    c.eval_every = tr.optional<int64_t>("eval_every", c.eval_every);
    c.eval_batches = tr.optional<int64_t>("eval_batches", c.eval_batches);
    c.max_skipped_steps = tr.optional<int64_t>("max_skipped_steps", c.max_skipped_steps);
    c.peak_flops = tr.optional<double>("peak_flops", c.peak_flops);
    tr.finish();
  }
  if (const Json* k = r.raw("checkpoint")) {
    JsonReader kr(*k, where + ": checkpoint");
    c.save_every = kr.optional<int64_t>("save_every", c.save_every);
    c.keep_last = kr.optional<int64_t>("keep_last", c.keep_last);
    c.save_at_end = kr.optional<bool>("at_end", c.save_at_end);
    kr.finish();
  }
  c.output_dir = resolve_path(r.optional<std::string>("output_dir", c.output_dir), base);
  r.finish();
  GRANITE_CHECK(c.steps >= 1, where, ": train.steps must be >= 1, got ", c.steps);
  GRANITE_CHECK(c.grad_accum >= 1, where, ": train.grad_accum must be >= 1, got ", c.grad_accum);
  GRANITE_CHECK(c.alpha >= 0 && c.alpha <= 1, where, ": train.alpha must be in [0, 1], got ", c.alpha);
  GRANITE_CHECK(c.neftune_alpha >= 0, where, ": train.neftune_alpha must be >= 0, got ", c.neftune_alpha);
  GRANITE_CHECK(c.log_every >= 1, where, ": train.log_every must be >= 1, got ", c.log_every);
  GRANITE_CHECK(c.eval_every >= 0 && c.eval_batches >= 1, where, ": train.eval_every must be >= 0 and eval_batches >= 1");
  GRANITE_CHECK(c.eval_every == 0 || c.eval_data || app_data, where,
                ": train.eval_every is set but there is no \"eval_data\"");
  GRANITE_CHECK(c.max_skipped_steps >= 1, where, ": train.max_skipped_steps must be >= 1");
  GRANITE_CHECK(c.save_every >= 0 && c.keep_last >= 1, where,
                ": checkpoint.save_every must be >= 0 and keep_last >= 1");
  GRANITE_CHECK(c.dtype == "float32" || c.dtype == "bfloat16", where, ": train.dtype \"", c.dtype,
                "\" is not supported (float32, bfloat16; float16 would need loss scaling)");
  GRANITE_CHECK(c.sharding == "none" || c.sharding == "optimizer" || c.sharding == "full", where,
                ": train.sharding \"", c.sharding, "\" is not supported (none, optimizer, full)");
  GRANITE_CHECK(c.master_dtype == "float32" || c.master_dtype == c.dtype, where, ": train.master_dtype \"",
                c.master_dtype, "\" must be float32 or the compute dtype \"", c.dtype, "\"");
  return c;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  Json j = read_json_file(path);
  for (const std::string& o : overrides) apply_override(j, o);
  const size_t slash = path.rfind('/');
  return train_config_from_json(j, path, slash == std::string::npos ? "." : path.substr(0, slash));
}

Json to_json(const TrainConfig& c) {
  Json j{{"tokenizer", c.tokenizer},
         {"data", to_json(c.data)},
         {"optimizer", to_json(c.optimizer)},
         {"schedule", to_json(c.schedule)},
         {"train",
          {{"steps", c.steps},
           {"grad_accum", c.grad_accum},
           {"alpha", c.alpha},
           {"seed", c.seed},
           {"document_mask", c.document_mask},
           {"activation_checkpointing", c.activation_checkpointing},
           {"neftune_alpha", c.neftune_alpha},
           {"device", c.device},
           {"dtype", c.dtype},
           {"master_dtype", c.master_dtype},
           {"sharding", c.sharding},
           {"log_every", c.log_every},
           {"eval_every", c.eval_every},
           {"eval_batches", c.eval_batches},
           {"max_skipped_steps", c.max_skipped_steps},
           {"peak_flops", c.peak_flops}}},
         {"checkpoint", {{"save_every", c.save_every}, {"keep_last", c.keep_last}, {"at_end", c.save_at_end}}},
         {"output_dir", c.output_dir}};
  for (auto it = c.app_sections.begin(); it != c.app_sections.end(); ++it) j[it.key()] = it.value();
  if (!c.model_config.empty()) j["model"] = c.model_config;
  if (!c.init_from.empty()) j["init_from"] = c.init_from;
  if (c.eval_data) j["eval_data"] = to_json(*c.eval_data);
  return j;
}

void apply_override(Json& j, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  GRANITE_CHECK(eq != std::string::npos && eq > 0, "--set \"", assignment, "\": expected key=value");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;  // not JSON: a string
  Json* node = &j;
  size_t start = 0;
  for (;;) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    GRANITE_CHECK(!part.empty() && node->is_object(), "--set ", key, ": \"", part, "\" is not a section");
    if (dot == std::string::npos) {
      (*node)[part] = value;  // a wrong leaf name is caught by the strict reader, naming it
      return;
    }
    if (!node->contains(part)) (*node)[part] = Json::object();
    node = &(*node)[part];
    start = dot + 1;
  }
}

}  // namespace granite
