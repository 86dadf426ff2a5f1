#include "config/validate.hpp"

#include "config/database_url.hpp"
#include "config/neon_target.hpp"

namespace pgvigil {
namespace {

constexpr const char* kExampleUrl = "postgresql://user:password@host:5432/dbname?sslmode=require";
constexpr const char* kDefaultUrlEnvs[] = {"PGVIGIL_DATABASE_URL", "DATABASE_URL"};

std::string WithoutUrlPrefix(std::string message) {
  constexpr std::string_view kPrefix = "database URL: ";
  if (message.rfind(kPrefix, 0) == 0) message.erase(0, kPrefix.size());
  return message;
}

}  // namespace

void CheckCrossField(const Settings& s, const Pending& p) {
  if (s.probe.timeout >= s.probe.interval) {
    const std::string key = p.where.count("probe.timeout") ? "probe.timeout" : "probe.interval";
    throw ConfigError(p.Where(key) + ": probe.timeout (" + FormatDuration(s.probe.timeout) +
                      ") must be shorter than probe.interval (" + FormatDuration(s.probe.interval) +
                      "); raise probe.interval or lower probe.timeout");
  }
  if (s.sampling.history < s.sampling.statements_interval) {
    const std::string key =
        p.where.count("sampling.history") ? "sampling.history" : "sampling.statements_interval";
    throw ConfigError(p.Where(key) + ": sampling.history (" + FormatDuration(s.sampling.history) +
                      ") must be at least sampling.statements_interval (" +
                      FormatDuration(s.sampling.statements_interval) +
                      "); raise sampling.history or lower sampling.statements_interval");
  }
  if (s.pool.backoff_initial > s.pool.backoff_max) {
    const std::string key =
        p.where.count("pool.backoff_initial") ? "pool.backoff_initial" : "pool.backoff_max";
    throw ConfigError(
        p.Where(key) + ": pool.backoff_initial (" + FormatDuration(s.pool.backoff_initial) +
        ") must not exceed pool.backoff_max (" + FormatDuration(s.pool.backoff_max) + ")");
  }
}

void ResolveDatabaseUrl(Settings& s, const Pending& p) {
  if (p.url && p.url_env) {
    throw ConfigError(p.Where("database.url_env") +
                      ": set either database.url or database.url_env, not both");
  }
  std::string url;
  std::string where;
  if (p.url) {
    url = *p.url;
    where = p.Where("database.url");
    s.database.url_env.clear();
  } else if (p.url_env) {
    auto value = p.env(p.url_env->c_str());
    if (!value || value->empty()) {
      throw ConfigError(p.Where("database.url_env") + ": environment variable " + *p.url_env +
                        " is not set or empty; export it with the database URL, e.g. " +
                        kExampleUrl);
    }
    url = *value;
    where = "environment variable " + *p.url_env + " (named by database.url_env)";
    s.database.url_env = *p.url_env;
  } else {
    for (const char* name : kDefaultUrlEnvs) {
      auto value = p.env(name);
      if (value && !value->empty()) {
        url = *value;
        where = std::string("environment variable ") + name;
        s.database.url_env = name;
        break;
      }
    }
    if (url.empty()) {
      throw ConfigError(Prefix(p.source, "database.url") +
                        ": no database URL; set the PGVIGIL_DATABASE_URL (or DATABASE_URL) "
                        "environment variable, or database.url or database.url_env in the "
                        "config file, e.g. " +
                        kExampleUrl);
    }
  }
  ParsedUrl parsed = ParseDatabaseUrl(url);
  if (!parsed) throw ConfigError(where + ": " + WithoutUrlPrefix(parsed.error().message));
  s.database.conn = std::move(*parsed);
  // The URL's own application_name wins: the user wrote it next to the credentials on purpose.
  if (std::string from_url = s.database.conn.Get("application_name"); !from_url.empty()) {
    s.database.application_name = from_url;
  } else {
    s.database.conn.Set("application_name", s.database.application_name);
  }
  if (s.neon.sampling_conn && s.neon.sampling_conn->Get("application_name").empty()) {
    s.neon.sampling_conn->Set("application_name", s.database.application_name);
  }
}

void CheckTargets(const Settings& s, EnvLookup env) {
  auto check = [&](const ConnParams& params, std::string_view key) {
    if (!ResolveNeonMode(s.neon, params)) return;
    if (auto tls = CheckNeonTls(s.neon, params, env("PGSSLMODE"), key)) throw ConfigError(*tls);
  };
  check(s.database.conn, "database.url");
  if (s.neon.sampling_conn) check(*s.neon.sampling_conn, "neon.sampling_url");
}

}  // namespace pgvigil
