// Reads a sparsetrt tensor file, prints each tensor, and writes them all to another file unchanged:
// `sparsetrt_tensor_roundtrip IN.bin OUT.bin`. The test suite uses it to check that this C++ reader and
// writer agree with Python's (sparsetrt.runtime.save_tensors / load_tensors) byte for byte.
#include "tensor_file.h"

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " IN.bin OUT.bin\n";
    return 2;
  }
  try {
    auto const tensors = sparsetrt_example::readTensorFile(argv[1]);
    for (auto const& t : tensors) {
      std::cout << t.name << " " << sparsetrt_example::dtypeName(t.dtype) << " [";
      for (size_t i = 0; i < t.dims.size(); ++i) {
        std::cout << (i ? ", " : "") << t.dims[i];
      }
      std::cout << "] " << t.data.size() << " bytes\n";
    }
    sparsetrt_example::writeTensorFile(argv[2], tensors);
  } catch (std::exception const& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
