#include "util/log.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "util/time_format.hpp"

using namespace pgvigil;

namespace {

// Everything after "ts=<timestamp> " so tests do not depend on the clock.
std::string AfterTs(const std::string& line) { return line.substr(line.find(' ') + 1); }

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

TEST_CASE("logfmt line has ts, level, msg and fields") {
  const auto line = FormatLogLine(LogLevelValue::kInfo, "probe failed",
                                  {{"key", "value"}, {"key2", "quoted value"}}, false);
  REQUIRE(std::regex_match(
      line, std::regex(R"(ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info .*\n)")));
  CHECK(AfterTs(line) == "level=info msg=\"probe failed\" key=value key2=\"quoted value\"\n");
}

TEST_CASE("logfmt quotes and escapes what needs it") {
  auto one = [](std::string v) {
    auto line = AfterTs(FormatLogLine(LogLevelValue::kWarn, "m", {{"k", std::move(v)}}, false));
    return line.substr(std::string("level=warn msg=m k=").size());
  };
  CHECK(one("plain") == "plain\n");
  CHECK(one("") == "\"\"\n");
  CHECK(one("a=b") == "\"a=b\"\n");
  CHECK(one("say \"hi\"") == "\"say \\\"hi\\\"\"\n");
  CHECK(one("two\nlines") == "\"two\\nlines\"\n");
  CHECK(one("tab\there") == "\"tab\\there\"\n");
  CHECK(one(std::string("nul\0x", 5)) == "\"nul\\u0000x\"\n");
  CHECK(one("back\\slash") == "back\\slash\n");  // unquoted backslash is fine in logfmt
  CHECK(one("back\\slash and space") == "\"back\\\\slash and space\"\n");
  CHECK(one("héllo") == "héllo\n");
}

TEST_CASE("logfmt keys are sanitized and never shadow ts/level/msg") {
  const auto line = AfterTs(FormatLogLine(LogLevelValue::kError, "x",
                                          {{"msg", "a"}, {"bad key=", "b"}, {"", "c"}}, false));
  CHECK(line == "level=error msg=x field_msg=a bad_key_=b _=c\n");
}

TEST_CASE("JSON lines are valid JSON with fields") {
  const auto line =
      FormatLogLine(LogLevelValue::kDebug, "hello \"world\"\n",
                    {{"target", "postgresql://u@h/db"}, {"level", "x"}, {"bad", "\xff\xfe"}}, true);
  REQUIRE(line.back() == '\n');
  REQUIRE(std::count(line.begin(), line.end(), '\n') == 1);
  const auto j = nlohmann::json::parse(line);
  CHECK(j["level"] == "debug");
  CHECK(j["msg"] == "hello \"world\"\n");
  CHECK(j["target"] == "postgresql://u@h/db");
  CHECK(j["field_level"] == "x");
  CHECK(j["bad"].is_string());  // invalid UTF-8 replaced, not thrown
  CHECK(std::regex_match(j["ts"].get<std::string>(),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}

TEST_CASE("level filter and concurrent writers produce whole lines") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  SetLogFdForTest(fds[1]);
  ConfigureLog(LogLevelValue::kInfo, false);
  LogDebug("hidden");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 50; ++i) {
        LogInfo("concurrent line", {{"thread", std::to_string(t)}, {"i", std::to_string(i)}});
      }
    });
  }
  for (auto& th : threads) th.join();
  LogWarn("last", {{"k", "v"}});
  SetLogFdForTest(-1);
  close(fds[1]);
  const auto text = ReadAll(fds[0]);
  close(fds[0]);
  CHECK(text.find("hidden") == std::string::npos);
  int lines = 0;
  size_t pos = 0;
  const std::regex shape(
      R"(ts=\S+ level=(info msg="concurrent line" thread=\d i=\d+|warn msg=last k=v))");
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    REQUIRE(nl != std::string::npos);
    CHECK(std::regex_match(text.substr(pos, nl - pos), shape));
    pos = nl + 1;
    ++lines;
  }
  CHECK(lines == 201);

  ConfigureLog(LogLevelValue::kError, true);
  REQUIRE(pipe(fds) == 0);
  SetLogFdForTest(fds[1]);
  LogWarn("filtered");
  LogError("shown", {{"a", "b"}});
  SetLogFdForTest(-1);
  close(fds[1]);
  const auto json_text = ReadAll(fds[0]);
  close(fds[0]);
  ConfigureLog(LogLevelValue::kInfo, false);
  const auto j = nlohmann::json::parse(json_text);
  CHECK(j["msg"] == "shown");
  CHECK(j["a"] == "b");
}

TEST_CASE("RFC 3339 formatting") {
  using namespace std::chrono;
  const system_clock::time_point tp = sys_days{year{2026} / 11 / 23} + 10h + 0min + 0s + 123ms;
  CHECK(FormatRfc3339Utc(tp) == "2026-11-23T10:00:00.123Z");
  CHECK(FormatRfc3339Utc(tp, 0) == "2026-11-23T10:00:00Z");
  CHECK(FormatRfc3339Utc(tp + 456us, 6) == "2026-11-23T10:00:00.123456Z");
  CHECK(FormatRfc3339Utc(system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
  CHECK(ToUnixSeconds(system_clock::time_point{} + 1500ms) == Approx(1.5));
}
