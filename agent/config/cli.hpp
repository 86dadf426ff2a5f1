#pragma once
// Command-line flags applied over the file and the environment (--listen, --log-level); the
// parser itself, ParseCommandLine, is declared in settings.hpp. Internal to config/.
#include "config/settings.hpp"

namespace pgvigil {

void ApplyFlags(Settings& s, const CliOptions& cli);

}  // namespace pgvigil
