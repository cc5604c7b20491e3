// The schema contract: the plugin creators' field table (sparsetrt/op_fields.h, no TensorRT header)
// must equal the exporter's op schema (exporter/schema/sparsetrt_ops.json): the same ops in the same
// order, plugin versions equal to since_version, the same attribute names, order and types, the domain as
// the plugin namespace, and the same lookup attributes (plugin_namespace, plugin_version). Either side
// drifting fails this test. The JSON path is argv[1].
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparsetrt/op_fields.h"

namespace {

// A minimal JSON reader (the schema is plain JSON: objects, arrays, strings, numbers, literals).
struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  double number = 0;
  bool boolean = false;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json& at(const std::string& key) const {
    for (const auto& [k, v] : object)
      if (k == key) return v;
    throw std::runtime_error("missing key '" + key + "'");
  }
  bool has(const std::string& key) const {
    for (const auto& kv : object)
      if (kv.first == key) return true;
    return false;
  }
};

class Parser {
 public:
  explicit Parser(std::string text) : s_(std::move(text)) {}
  Json parseDocument() {
    Json v = value();
    ws();
    if (i_ != s_.size()) error("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) {
    throw std::runtime_error("JSON parse error at offset " + std::to_string(i_) + ": " + what);
  }
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) error("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string str() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= s_.size()) error("unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (c == '\\') {
        if (i_ >= s_.size()) error("bad escape");
        char e = s_[i_++];
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'u':  // names and types are ASCII; keep escapes of docs verbatim
            if (i_ + 4 > s_.size()) error("bad \\u escape");
            out += "\\u" + s_.substr(i_, 4);
            i_ += 4;
            break;
          default:
            out += e;
        }
      } else {
        out += c;
      }
    }
  }
  Json value() {
    Json v;
    const char c = peek();
    if (c == '{') {
      v.kind = Json::kObject;
      ++i_;
      if (peek() == '}') return ++i_, v;
      while (true) {
        std::string key = str();
        expect(':');
        v.object.emplace_back(key, value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Json::kArray;
      ++i_;
      if (peek() == ']') return ++i_, v;
      while (true) {
        v.array.push_back(value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Json::kString;
      v.string = str();
      return v;
    }
    for (const char* lit : {"true", "false", "null"}) {
      const std::string l(lit);
      if (s_.compare(i_, l.size(), l) == 0) {
        i_ += l.size();
        v.kind = l == "null" ? Json::kNull : Json::kBool;
        v.boolean = l == "true";
        return v;
      }
    }
    std::size_t end = i_;
    while (end < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[end])) || std::strchr("+-.eE", s_[end])))
      ++end;
    if (end == i_) error("unexpected character");
    v.kind = Json::kNumber;
    v.number = std::stod(s_.substr(i_, end - i_));
    i_ = end;
    return v;
  }

  std::string s_;
  std::size_t i_ = 0;
};

int failures = 0;
void expectEq(const std::string& what, const std::string& schema, const std::string& table) {
  if (schema != table) {
    std::printf("MISMATCH %s: schema has '%s', plugin table has '%s'\n", what.c_str(), schema.c_str(), table.c_str());
    ++failures;
  }
}

std::string tableType(sparsetrt::FieldType t) { return sparsetrt::fieldTypeName(t); }

std::string versionString(double v) {
  std::ostringstream s;
  s << static_cast<long long>(v);
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::printf("usage: %s path/to/sparsetrt_ops.json\n", argv[0]);
    return 2;
  }
  std::ifstream file(argv[1]);
  if (!file) {
    std::printf("cannot open %s\n", argv[1]);
    return 2;
  }
  std::stringstream buffer;
  buffer << file.rdbuf();
  try {
    const Json schema = Parser(buffer.str()).parseDocument();
    expectEq("domain (plugin namespace)", schema.at("domain").string, sparsetrt::kPluginNamespace);
    // The lookup attributes, which the creators accept without declaring them.
    const auto& lookup = schema.at("lookup_attributes").array;
    expectEq("number of lookup attributes", std::to_string(lookup.size()), std::to_string(sparsetrt::kNumLookupFields));
    for (std::size_t i = 0; i < lookup.size() && i < sparsetrt::kNumLookupFields; ++i) {
      expectEq("lookup attribute " + std::to_string(i), lookup[i].at("name").string, sparsetrt::kLookupFields[i]);
      expectEq(lookup[i].at("name").string + " type", lookup[i].at("type").string, "string");
    }
    const auto& ops = schema.at("ops").array;
    expectEq("number of ops", std::to_string(ops.size()), std::to_string(sparsetrt::kNumOps));
    for (std::size_t i = 0; i < ops.size() && i < sparsetrt::kNumOps; ++i) {
      const Json& op = ops[i];
      const sparsetrt::OpSpec& spec = sparsetrt::kOps[i];
      const std::string name = op.at("name").string;
      expectEq("op " + std::to_string(i) + " name", name, spec.name);
      expectEq(name + " plugin version", versionString(op.at("since_version").number), spec.version);
      std::string previous;  // the schema lists previous versions; the table holds at most one
      if (op.has("previous_versions")) {
        for (const Json& v : op.at("previous_versions").array)
          previous += (previous.empty() ? "" : ",") + versionString(v.number);
      }
      expectEq(name + " previous plugin versions", previous, spec.previous_version ? spec.previous_version : "");
      const auto& attrs = op.at("attributes").array;
      expectEq(name + " number of attributes", std::to_string(attrs.size()), std::to_string(spec.num_fields));
      for (std::size_t j = 0; j < attrs.size() && j < spec.num_fields; ++j) {
        const std::string field = attrs[j].at("name").string;
        expectEq(name + " attribute " + std::to_string(j), field, spec.fields[j].name);
        const std::string type = attrs[j].at("type").string;
        if (type != "int" && type != "ints" && type != "float") {
          std::printf("MISMATCH %s.%s: schema type '%s' has no TensorRT field type in the plugin table\n", name.c_str(),
                      field.c_str(), type.c_str());
          ++failures;
        }
        expectEq(name + "." + field + " type", type, tableType(spec.fields[j].type));
      }
    }
  } catch (const std::exception& e) {
    std::printf("error reading %s: %s\n", argv[1], e.what());
    return 1;
  }
  std::printf("%s: %zu ops compared, %d mismatches\n", argv[1], sparsetrt::kNumOps, failures);
  return failures == 0 ? 0 : 1;
}
