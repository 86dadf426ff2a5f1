#pragma once
// Clock: where the scheduler and its jobs read the time, so tests can drive them with simulated
// time (ManualClock) instead of sleeping. SystemClock reads std::chrono's clocks.
// Thread-safety: SystemClock is stateless; ManualClock is for one test thread (no locking).
// Deadlines handed to libpq are always real steady_clock times: a Connection polls against them.
#include <chrono>

namespace pgvigil {

class Clock {
 public:
  using SteadyPoint = std::chrono::steady_clock::time_point;
  using WallPoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual SteadyPoint Steady() const = 0;
  virtual WallPoint Wall() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyPoint Steady() const override { return std::chrono::steady_clock::now(); }
  WallPoint Wall() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& Instance() {
    static const SystemClock clock;
    return clock;
  }
};

// Simulated time: starts at the real now and moves only when told.
class ManualClock final : public Clock {
 public:
  ManualClock()
      : steady_(std::chrono::steady_clock::now()), wall_(std::chrono::system_clock::now()) {}
  SteadyPoint Steady() const override { return steady_; }
  WallPoint Wall() const override { return wall_; }
  template <typename Rep, typename Period>
  void Advance(std::chrono::duration<Rep, Period> d) {
    steady_ += std::chrono::duration_cast<SteadyPoint::duration>(d);
    wall_ += std::chrono::duration_cast<WallPoint::duration>(d);
  }
  void AdvanceTo(SteadyPoint t) {
    if (t > steady_) Advance(t - steady_);
  }

 private:
  SteadyPoint steady_;
  WallPoint wall_;
};

}  // namespace pgvigil
