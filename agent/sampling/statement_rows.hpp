#pragma once
// The rows of StatementsSql (statement_columns.hpp) as StatementRows: unparsable rows are left
// out (skipping one only costs that statement a baseline); names are made valid UTF-8.
// Thread-safe (pure).
#include <vector>

#include "db/connection.hpp"
#include "sampling/statement_diff.hpp"

namespace pgvigil {

std::vector<StatementRow> ParseStatementRows(const QueryResult& q);

}  // namespace pgvigil
