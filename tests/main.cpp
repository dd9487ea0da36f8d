// Test runner entry: our main() silences SystemC's banner and makes the built `lpusim` tool known
// to CLI tests as $LPUSIM, then SystemC calls sc_main, which runs Catch2.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>
#include <systemc>

int sc_main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }

int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  setenv("LPUSIM", LPU_LPUSIM_PATH, 0);  // keep a caller's override
  return sc_core::sc_elab_and_sim(argc, argv);
}
