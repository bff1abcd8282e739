/// The version `vggtl --version` prints.
public enum VGGTLVersion {
    public static let current = "0.12.0"
}
