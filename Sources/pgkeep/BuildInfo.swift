/// What `pgkeep --version` prints. tools/package writes the revision it builds from; a build from
/// a checkout says "dev".
enum BuildInfo {
    static let version = "0.2.0"
    static let revision = "dev"
    static var description: String { "\(version) (\(revision))" }
}
