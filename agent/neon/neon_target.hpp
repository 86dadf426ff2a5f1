#pragma once
// The Neon target is resolved and checked by the config (config/neon_target.hpp).
#include "config/neon_target.hpp"
