# cudl_target_defaults(<target>): warnings (errors with CUDL_WERROR) and the CPU instruction set for our own targets.
function(cudl_target_defaults target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wshadow>)
  if(CUDL_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
  if(CUDL_NATIVE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  endif()
endfunction()

# cudl_driver_defaults(<target>): for programs whose own code only drives the library (the tests,
# the examples, a benchmark's command-line parsing): built at -O1 in the optimised configurations.
# The library keeps -O3; these gain nothing from it but compile time (GoogleTest's and CLI11's
# templates: test_tensor.cpp 9.6 s at -O3, 5.2 s at -O1; mnist_mlp.cpp 12.4 s and 6.8 s, g++ 12 on
# a 2-core Zen 3), which CI pays on every run.
set(CUDL_DRIVER_OPTIMIZATION $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<NOT:$<CONFIG:Debug>>>:-O1>)
function(cudl_driver_defaults target)
  cudl_target_defaults(${target})
  target_compile_options(${target} PRIVATE ${CUDL_DRIVER_OPTIMIZATION})
endfunction()
