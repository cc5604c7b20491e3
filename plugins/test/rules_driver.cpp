// The plugin creators' attribute parsing and input-shape checks, driven from stdin, so tests/test_rules_cpp.py
// can compare them with the Python side (exporter/schema/rules.py) on thousands of cases: the reference runtime
// must refuse exactly what an engine build refuses, with the same message. Each case goes through its op's check
// function, found in the generated table ops/op_table.h: the driver names no op.
//
// One case per line, tab-separated:  OP  NODE  FIELDS  SHAPES
//   FIELDS: ';'-separated name=KIND:VALUES with KIND a (int32 array, VALUES comma-separated, may be empty),
//           i (one int32) or f (one float32, VALUES its bit pattern as an unsigned decimal); '-' for none
//   SHAPES: '|'-separated input dims (comma-separated, -1 unknown; '~' an absent optional input); '-' to skip
// One answer per line: "ok", or "error<TAB>message" (an AttributeError or ShapeError; anything else is a bug
// and ends the program with status 1).
#include <cstdint>
#include <cstring>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/op_table.h"
#include "sparsetrt/node_check.h"
#include "sparsetrt/shapes.h"

using namespace sparsetrt;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  if (!s.empty() && s.back() == sep) parts.emplace_back();
  return parts;
}

std::vector<int64_t> numbers(const std::string& s) {
  std::vector<int64_t> out;
  if (s.empty()) return out;
  for (const std::string& p : split(s, ',')) out.push_back(std::stoll(p));
  return out;
}

std::vector<FieldValue> parseFields(const std::string& text) {
  std::vector<FieldValue> fields;
  if (text == "-") return fields;
  for (const std::string& item : split(text, ';')) {
    const auto eq = item.find('='), colon = item.find(':', eq);
    FieldValue f;
    f.name = item.substr(0, eq);
    const char kind = item[eq + 1];
    const std::string values = item.substr(colon + 1);
    if (kind == 'f') {
      const uint32_t bits = static_cast<uint32_t>(std::stoul(values));
      f.type = FieldType::kFloat32;
      std::memcpy(&f.f, &bits, sizeof(bits));
    } else {
      f.type = kind == 'a' ? FieldType::kInt32Array : FieldType::kInt32;
      for (int64_t v : numbers(values)) f.ints.push_back(static_cast<int32_t>(v));
    }
    fields.push_back(f);
  }
  return fields;
}

// One node through its op's check function (ops/op_table.h): what an engine build does with it.
void run(const std::string& op, const std::string& node, const std::vector<FieldValue>& fields,
         const std::string& shapes) {
  const OpEntry* entry = findOp(op);
  if (entry == nullptr) throw std::logic_error("unknown op " + op);
  const std::vector<FieldView> views = viewsOf(fields);
  NodeDesc desc;
  desc.name = node;
  desc.fields = views.empty() ? nullptr : views.data();
  desc.num_fields = static_cast<int32_t>(views.size());
  std::vector<Dims> dims;
  if (shapes != "-") {
    // "" is one input of rank 0 (MaskRows' mask [N] with its dim dropped), not no input.
    const auto parts = shapes.empty() ? std::vector<std::string>{""} : split(shapes, '|');
    for (const std::string& s : parts) dims.push_back(s == "~" ? Dims{} : numbers(s));
    desc.has_inputs = true;
    for (std::size_t i = 0; i < dims.size(); ++i) desc.inputs.push_back(parts[i] == "~" ? nullptr : &dims[i]);
  }
  entry->check(desc);
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    const std::vector<std::string> parts = split(line, '\t');
    if (parts.size() != 4) {
      std::cerr << "malformed case: " << line << "\n";
      return 1;
    }
    try {
      run(parts[0], parts[1], parseFields(parts[2]), parts[3]);
      std::cout << "ok\n";
    } catch (const AttributeError& e) {
      std::cout << "error\t" << e.what() << "\n";
    } catch (const ShapeError& e) {
      std::cout << "error\t" << e.what() << "\n";
    }
  }
  return 0;
}
