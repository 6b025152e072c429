// cairnctl: see cli/cairnctl.h and `cairnctl help`.

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cairnctl.h"

int main(int argc, char** argv) {
  // A closed pipe (`cairnctl events | head`) ends the program quietly.
  std::signal(SIGPIPE, SIG_DFL);
  std::vector<std::string> args(argv + 1, argv + argc);
  return cairn::cli::Cairnctl(args, std::cout, std::cerr);
}
