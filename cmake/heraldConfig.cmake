include(CMakeFindDependencyMacro)
find_dependency(Boost 1.81 CONFIG COMPONENTS json url)
find_dependency(OpenSSL 3)
find_dependency(Threads)
# Optional: herald::sqlite (the durable store and log) needs it; herald::herald does not.
find_package(SQLite3 3.35 QUIET)
# Optional: herald::postgres (the store shared by several processes) needs libpq.
find_package(PostgreSQL 15 QUIET)
include("${CMAKE_CURRENT_LIST_DIR}/heraldTargets.cmake")
