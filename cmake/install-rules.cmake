include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        COMPONENT herald_Development)
install(TARGETS herald EXPORT heraldTargets INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
if(TARGET herald_sqlite)
    install(TARGETS herald_sqlite EXPORT heraldTargets)
endif()
if(TARGET herald_postgres)
    install(TARGETS herald_postgres EXPORT heraldTargets)
endif()

set(herald_config_dir "${CMAKE_INSTALL_DATADIR}/herald" CACHE PATH "Where herald's CMake package files go")
mark_as_advanced(herald_config_dir)

write_basic_package_version_file(heraldConfigVersion.cmake COMPATIBILITY SameMinorVersion
                                 ARCH_INDEPENDENT)
install(FILES "${PROJECT_SOURCE_DIR}/cmake/heraldConfig.cmake"
              "${PROJECT_BINARY_DIR}/heraldConfigVersion.cmake"
        DESTINATION "${herald_config_dir}" COMPONENT herald_Development)
install(EXPORT heraldTargets NAMESPACE herald:: DESTINATION "${herald_config_dir}"
        COMPONENT herald_Development)
