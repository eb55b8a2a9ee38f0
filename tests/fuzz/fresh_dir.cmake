# cmake -DDIR=<path> -P fresh_dir.cmake: empties (or creates) DIR, the build-tree corpus a
# fuzz run writes its new inputs to.
if(NOT DIR)
    message(FATAL_ERROR "DIR is not set")
endif()
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
