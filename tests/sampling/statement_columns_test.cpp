#include "sampling/statement_columns.hpp"

#include <catch2/catch.hpp>
#include <sstream>

namespace pgvigil {
namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

// Column lists of the pg_stat_statements view as shipped with each major version.
const char* kPg12 =  // 1.7
    "userid,dbid,queryid,query,calls,total_time,min_time,max_time,mean_time,stddev_time,rows,"
    "shared_blks_hit,shared_blks_read,shared_blks_dirtied,shared_blks_written,local_blks_hit,"
    "local_blks_read,local_blks_dirtied,local_blks_written,temp_blks_read,temp_blks_written,"
    "blk_read_time,blk_write_time";
const char* kPg13 =  // 1.8
    "userid,dbid,queryid,query,plans,total_plan_time,min_plan_time,max_plan_time,mean_plan_time,"
    "stddev_plan_time,calls,total_exec_time,min_exec_time,max_exec_time,mean_exec_time,"
    "stddev_exec_time,rows,shared_blks_hit,shared_blks_read,shared_blks_dirtied,"
    "shared_blks_written,local_blks_hit,local_blks_read,local_blks_dirtied,local_blks_written,"
    "temp_blks_read,temp_blks_written,blk_read_time,blk_write_time,wal_records,wal_fpi,wal_bytes";
const char* kPg14 =  // 1.9
    "userid,dbid,toplevel,queryid,query,plans,total_plan_time,min_plan_time,max_plan_time,"
    "mean_plan_time,stddev_plan_time,calls,total_exec_time,min_exec_time,max_exec_time,"
    "mean_exec_time,stddev_exec_time,rows,shared_blks_hit,shared_blks_read,shared_blks_dirtied,"
    "shared_blks_written,local_blks_hit,local_blks_read,local_blks_dirtied,local_blks_written,"
    "temp_blks_read,temp_blks_written,blk_read_time,blk_write_time,wal_records,wal_fpi,wal_bytes";
const char* kPg15 =  // 1.10
    "userid,dbid,toplevel,queryid,query,plans,total_plan_time,min_plan_time,max_plan_time,"
    "mean_plan_time,stddev_plan_time,calls,total_exec_time,min_exec_time,max_exec_time,"
    "mean_exec_time,stddev_exec_time,rows,shared_blks_hit,shared_blks_read,shared_blks_dirtied,"
    "shared_blks_written,local_blks_hit,local_blks_read,local_blks_dirtied,local_blks_written,"
    "temp_blks_read,temp_blks_written,blk_read_time,blk_write_time,temp_blk_read_time,"
    "temp_blk_write_time,wal_records,wal_fpi,wal_bytes,jit_functions,jit_generation_time,"
    "jit_inlining_count,jit_inlining_time,jit_optimization_count,jit_optimization_time,"
    "jit_emission_count,jit_emission_time";
const char* kPg17 =  // 1.11
    "userid,dbid,toplevel,queryid,query,plans,total_plan_time,min_plan_time,max_plan_time,"
    "mean_plan_time,stddev_plan_time,calls,total_exec_time,min_exec_time,max_exec_time,"
    "mean_exec_time,stddev_exec_time,rows,shared_blks_hit,shared_blks_read,shared_blks_dirtied,"
    "shared_blks_written,local_blks_hit,local_blks_read,local_blks_dirtied,local_blks_written,"
    "temp_blks_read,temp_blks_written,shared_blk_read_time,shared_blk_write_time,"
    "local_blk_read_time,local_blk_write_time,temp_blk_read_time,temp_blk_write_time,"
    "wal_records,wal_fpi,wal_bytes,jit_functions,jit_generation_time,jit_inlining_count,"
    "jit_inlining_time,jit_optimization_count,jit_optimization_time,jit_emission_count,"
    "jit_emission_time,jit_deform_count,jit_deform_time,stats_since,minmax_stats_since";

}  // namespace

TEST_CASE("DetectStatementColumns picks the shape per extension version", "[columns]") {
  auto pg12 = DetectStatementColumns(Split(kPg12), "public", false);
  REQUIRE(pg12);
  CHECK_FALSE(pg12->toplevel);
  CHECK(pg12->total_time == "total_time");
  CHECK(pg12->read_time == "blk_read_time");
  CHECK_FALSE(pg12->stats_since);

  auto pg13 = DetectStatementColumns(Split(kPg13), "public", false);
  REQUIRE(pg13);
  CHECK_FALSE(pg13->toplevel);
  CHECK(pg13->total_time == "total_exec_time");

  for (const char* cols : {kPg14, kPg15}) {
    auto c = DetectStatementColumns(Split(cols), "public", true);
    REQUIRE(c);
    CHECK(c->toplevel);
    CHECK(c->total_time == "total_exec_time");
    CHECK(c->read_time == "blk_read_time");
    CHECK_FALSE(c->stats_since);
    CHECK(c->info_view);
  }

  auto pg17 = DetectStatementColumns(Split(kPg17), "ext", true);
  REQUIRE(pg17);
  CHECK(pg17->toplevel);
  CHECK(pg17->read_time == "shared_blk_read_time");
  CHECK(pg17->stats_since);
  CHECK(pg17->schema == "ext");
}

TEST_CASE("DetectStatementColumns explains an unsupported shape", "[columns]") {
  std::string error;
  CHECK_FALSE(DetectStatementColumns({"userid", "dbid", "query"}, "public", false, &error));
  CHECK(error.find("queryid") != std::string::npos);
  CHECK(error.find("ALTER EXTENSION") != std::string::npos);
  auto cols = Split(kPg13);
  cols.erase(std::find(cols.begin(), cols.end(), "total_exec_time"));
  CHECK_FALSE(DetectStatementColumns(cols, "public", false, &error));
  CHECK(error.find("total_exec_time") != std::string::npos);
}

TEST_CASE("Sampler SQL follows the detected shape", "[columns]") {
  auto pg12 = *DetectStatementColumns(Split(kPg12), "public", false);
  auto pg15 = *DetectStatementColumns(Split(kPg15), "public", true);
  auto pg17 = *DetectStatementColumns(Split(kPg17), "my \"schema", true);

  std::string s12 = StatementsSql(pg12);
  CHECK(s12.rfind("/* pgvigil */", 0) == 0);
  CHECK(s12.find("s.total_time AS total_exec_time") != std::string::npos);
  CHECK(s12.find("toplevel::int") == std::string::npos);
  CHECK(s12.find("1 AS toplevel") != std::string::npos);
  CHECK(s12.find("s.blk_read_time AS blk_read_time") != std::string::npos);
  CHECK(s12.find("NULL::text AS stats_since") != std::string::npos);
  CHECK(s12.find("pg_stat_statements(false)") != std::string::npos);
  CHECK(s12.find("LIMIT ") != std::string::npos);

  std::string s15 = StatementsSql(pg15);
  CHECK(s15.find("s.toplevel::int AS toplevel") != std::string::npos);
  CHECK(s15.find("s.total_exec_time AS total_exec_time") != std::string::npos);

  std::string s17 = StatementsSql(pg17);
  CHECK(s17.find("s.shared_blk_read_time AS blk_read_time") != std::string::npos);
  CHECK(s17.find("extract(epoch FROM s.stats_since)") != std::string::npos);
  CHECK(s17.find("FROM \"my \"\"schema\".pg_stat_statements(false)") != std::string::npos);

  CHECK(StatementsInfoSql(pg12).find("pg_stat_statements_info") == std::string::npos);
  CHECK(StatementsInfoSql(pg15).find("\"public\".pg_stat_statements_info") != std::string::npos);
  CHECK(StatementTextsSql(pg15).find("ANY($1::bigint[])") != std::string::npos);
  for (const std::string& sql :
       {ExtensionProbeSql(), StatementsInfoSql(pg12), StatementTextsSql(pg17)}) {
    CHECK(sql.rfind("/* pgvigil */", 0) == 0);
    CHECK(sql.find(';') == std::string::npos);  // one statement: pooler-safe
  }
}

}  // namespace pgvigil
