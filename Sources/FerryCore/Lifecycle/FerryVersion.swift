/// Ferry's version, shown by `ferry --version`, `/v1/status` and `ferry_build_info`.
public enum FerryVersion {
    public static let current = "0.1.0"
}
