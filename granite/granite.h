#pragma once
// Umbrella header for embedders: configs, models, checkpoint I/O and generation.
#include "granite/config/hf_config.h"
#include "granite/config/model_config.h"
#include "granite/core/check.h"
#include "granite/core/compat.h"
#include "granite/generate/generator.h"
#include "granite/io/pretrained.h"
#include "granite/io/safetensors.h"
#include "granite/models/causal_lm.h"
#include "granite/models/depth_upscale.h"
#include "granite/models/factory.h"
#include "granite/nn/kv_cache.h"
#include "granite/version.h"
