// A check the op tests (ops/<op>/<op>_test.cpp) share: an op's serialized fields against the schema's field table.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "harness.h"
#include "sparsetrt/attributes.h"
#include "sparsetrt/op_fields.h"

// What a plugin serializes is exactly what its creator declares, in the same order and types.
inline void checkFieldsFollowSchema(const char* op, const std::vector<sparsetrt::FieldValue>& fields) {
  using namespace sparsetrt;
  const OpSpec* spec = nullptr;
  for (const OpSpec& s : kOps)
    if (std::string(s.name) == op) spec = &s;
  CHECK(spec != nullptr);
  if (!spec) return;
  CHECK(spec->num_fields == fields.size());
  for (std::size_t i = 0; i < std::min(spec->num_fields, fields.size()); ++i) {
    CHECK(fields[i].name == spec->fields[i].name);
    CHECK(fields[i].type == spec->fields[i].type);
  }
}
