# cmake -DDOXYGEN=<doxygen> -DCONFIG=<the configured Doxyfile> -DWORK=<folder> -P check_doxygen_fails.cmake
# The docs target's settings must fail on an undocumented public function (so CI catches one) and
# pass on the same header once it is documented (so the failure is that function's).
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/bad" "${WORK}/good")
set(head "#pragma once\n/// @file\n/// A header of one function.\n\n/// A namespace.\nnamespace probe {\n")
file(WRITE "${WORK}/bad/probe.hpp" "${head}int undocumented_function(int x);\n}  // namespace probe\n")
file(WRITE "${WORK}/good/probe.hpp"
     "${head}/// Twice x.\nint undocumented_function(int x);\n}  // namespace probe\n")
foreach(kind bad good)
  file(WRITE "${WORK}/${kind}/Doxyfile"
       "@INCLUDE = ${CONFIG}\nINPUT = ${WORK}/${kind}/probe.hpp\nUSE_MDFILE_AS_MAINPAGE =\n"
       "OUTPUT_DIRECTORY = ${WORK}/${kind}/out\nWARN_LOGFILE = ${WORK}/${kind}/warnings.log\n")
  execute_process(COMMAND "${DOXYGEN}" "${WORK}/${kind}/Doxyfile" RESULT_VARIABLE status_${kind})
  set(log_${kind} "")
  if(EXISTS "${WORK}/${kind}/warnings.log")
    file(READ "${WORK}/${kind}/warnings.log" log_${kind})
  endif()
endforeach()
if(status_bad EQUAL 0)
  message(FATAL_ERROR "doxygen passed a header with an undocumented function; its log:\n${log_bad}")
endif()
if(NOT log_bad MATCHES "undocumented_function")
  message(FATAL_ERROR "doxygen failed, but its log does not name the undocumented function:\n${log_bad}")
endif()
if(NOT status_good EQUAL 0 OR NOT log_good STREQUAL "")
  message(FATAL_ERROR "doxygen failed on the documented header (status ${status_good}):\n${log_good}")
endif()
message(STATUS "doxygen fails on the undocumented function and passes once it is documented")
