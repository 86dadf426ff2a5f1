// The command line of the real binary: --version, --check-config exit codes and messages.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <map>

#include "support/agent_process.hpp"

using namespace pgvigil::test;

namespace {
std::string WriteTemp(const std::string& text) {
  char tmpl[] = "/tmp/pgvigil-cli.XXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  std::ofstream(tmpl) << text;
  return tmpl;
}
}  // namespace

TEST_CASE("--version prints the version") {
  auto r = RunPgvigil({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.output.rfind("pgvigil ", 0) == 0);
}

TEST_CASE("--check-config accepts the reference config") {
  auto r = RunPgvigil({"--check-config", "--config", PGVIGIL_SOURCE_DIR "/config/pgvigil.toml"},
                      {{"PGVIGIL_DATABASE_URL", "postgresql://u:pw@db.example.com/app"}});
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("pw@") == std::string::npos);
}

TEST_CASE("--check-config rejects a bad value with file, line and key") {
  const std::string path = WriteTemp("[probe]\ninterval = \"10s\"\ntimeout = \"2x\"\n");
  auto r = RunPgvigil({"--check-config", "--config", path},
                      {{"PGVIGIL_DATABASE_URL", "postgresql://u@localhost/app"}});
  std::remove(path.c_str());
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find(":3:") != std::string::npos);
  CHECK(r.output.find("probe.timeout") != std::string::npos);
}

// --check-config used to accept an endpoint with no host, and the agent then exited 1 at start.
TEST_CASE("--check-config refuses an OTLP endpoint the exporter could not use") {
  const std::string path = WriteTemp("[tracing]\notlp_endpoint = \"http://\"\n");
  const std::map<std::string, std::string> env = {
      {"PGVIGIL_DATABASE_URL", "postgresql://u@localhost/app"}};
  auto check = RunPgvigil({"--check-config", "--config", path}, env);
  auto start = RunPgvigil({"--config", path, "--listen", "127.0.0.1:0"}, env);
  std::remove(path.c_str());
  INFO(check.output);
  CHECK(check.exit_code == 2);
  CHECK(check.output.find("tracing.otlp_endpoint: \"http://\" has no host") != std::string::npos);
  INFO(start.output);
  CHECK(start.exit_code == 2);  // a configuration error, as --check-config says; not a crash
}

TEST_CASE("--listen :PORT is accepted, as the server always took it") {
  auto r = RunPgvigil({"--check-config", "--listen", ":9187"},
                      {{"PGVIGIL_DATABASE_URL", "postgresql://u@localhost/app"}});
  INFO(r.output);
  CHECK(r.exit_code == 0);
}

TEST_CASE("missing database URL is a configuration error") {
  auto r = RunPgvigil({"--check-config"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("DATABASE_URL") != std::string::npos);
}

TEST_CASE("unknown flag is rejected") {
  auto r = RunPgvigil({"--frobnicate"});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--frobnicate") != std::string::npos);
}

TEST_CASE("a Neon host without sslmode=require is refused with the fix") {
  auto r = RunPgvigil({"--check-config"},
                      {{"PGVIGIL_DATABASE_URL",
                        "postgresql://u:pw@ep-cool-night-123456.us-east-2.aws.neon.tech/app"}});
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("sslmode") != std::string::npos);
  auto ok = RunPgvigil(
      {"--check-config"},
      {{"PGVIGIL_DATABASE_URL",
        "postgresql://u:pw@ep-cool-night-123456.us-east-2.aws.neon.tech/app?sslmode=require"}});
  CHECK(ok.exit_code == 0);
}

TEST_CASE("a Neon neon.sampling_url without sslmode=require is refused too") {
  const std::string path = WriteTemp(
      "[neon]\nsampling_url = "
      "\"postgresql://u:Sampl3-pw@ep-cool-night-123456.us-east-2.aws.neon.tech/app\"\n");
  auto r = RunPgvigil({"--check-config", "--config", path},
                      {{"PGVIGIL_DATABASE_URL",
                        "postgresql://u:pw@ep-cool-night-123456-pooler.us-east-2.aws.neon.tech/"
                        "app?sslmode=require"}});
  std::remove(path.c_str());
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("neon.sampling_url: sslmode") != std::string::npos);
  CHECK(r.output.find("Sampl3-pw") == std::string::npos);
}

TEST_CASE("--config must name a regular file of bounded size") {
  const std::map<std::string, std::string> env = {
      {"PGVIGIL_DATABASE_URL", "postgresql://u@localhost/app"}};
  SECTION("a directory") {
    auto r = RunPgvigil({"--check-config", "--config", "/tmp"}, env);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("\"/tmp\"") != std::string::npos);
    CHECK(r.output.find("directory") != std::string::npos);
  }
  SECTION("a device that never ends") {
    auto r = RunPgvigil({"--check-config", "--config", "/dev/zero"}, env);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("not a regular file") != std::string::npos);
  }
  SECTION("a FIFO nobody writes to: refused at once, not waited on") {
    char dir[] = "/tmp/pgvigil-fifo.XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const std::string fifo = std::string(dir) + "/config.toml";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    auto r = RunPgvigil({"--check-config", "--config", fifo}, env);
    std::remove(fifo.c_str());
    rmdir(dir);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("not a regular file") != std::string::npos);
  }
  SECTION("a file over the size limit") {
    const std::string path = WriteTemp("# " + std::string(2 << 20, 'x') + "\n");
    auto r = RunPgvigil({"--check-config", "--config", path}, env);
    std::remove(path.c_str());
    INFO(r.output.substr(0, 400));
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("over the limit") != std::string::npos);
  }
}
