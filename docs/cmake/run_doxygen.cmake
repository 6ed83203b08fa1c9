# cmake -DDOXYGEN=<doxygen> -DCONFIG=<Doxyfile> -DLOG=<warning log> -P run_doxygen.cmake
# Runs Doxygen; its warnings go to LOG (WARN_LOGFILE), so on failure they are printed here, where
# the build's output (and CI's log) shows them.
file(REMOVE "${LOG}")
execute_process(COMMAND "${DOXYGEN}" "${CONFIG}" RESULT_VARIABLE status)
set(warnings "")
if(EXISTS "${LOG}")
  file(READ "${LOG}" warnings)
endif()
if(NOT status EQUAL 0 OR NOT warnings STREQUAL "")
  message("${warnings}")
  message(FATAL_ERROR "doxygen failed (exit status ${status}): every warning above is an error; fix the doc comments "
                      "(the log: ${LOG})")
endif()
