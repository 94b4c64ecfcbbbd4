// Empty: exists so CMake has a target that owns the apps' shared precompiled header.
