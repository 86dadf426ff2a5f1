#pragma once
// The time vocabulary every folder shares: durations in milliseconds, wall-clock and monotonic
// time points. (The injectable clock is util/clock.hpp.)
#include <chrono>

namespace pgvigil {

using Millis = std::chrono::milliseconds;
using SystemTime = std::chrono::system_clock::time_point;
using SteadyTime = std::chrono::steady_clock::time_point;

}  // namespace pgvigil
