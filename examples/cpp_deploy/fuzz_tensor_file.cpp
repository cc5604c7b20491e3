// libFuzzer target over the C++ tensor-file reader (tensor_file.h): any bytes either parse or throw
// std::runtime_error, never read out of bounds, overflow or allocate more than the input describes; and what
// parses writes back to exactly the same bytes (the format has one encoding). Built with
// -fsanitize=fuzzer,address,undefined by tests/test_fuzz.py where clang exists.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "tensor_file.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size) {
  std::vector<sparsetrt_example::Tensor> tensors;
  try {
    tensors = sparsetrt_example::parseTensorFile(data, size, "fuzz input");
  } catch (std::runtime_error const&) {
    return 0;
  }
  std::vector<uint8_t> const again = sparsetrt_example::serializeTensorFile(tensors);
  if (again.size() != size || (size != 0 && std::memcmp(again.data(), data, size) != 0)) {
    __builtin_trap();
  }
  return 0;
}
