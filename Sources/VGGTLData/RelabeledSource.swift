import Foundation
import VGGTLTensors

/// Images of a base source, re-indexed and relabelled (a class subset as a new task).
public final class RelabeledSource: ImageSource, @unchecked Sendable {
    public let base: ImageSource
    public let indices: [Int]
    public let labels: [Int]
    public let classNames: [String]

    /// `labelMap`: the base's label -> the new one, for every label of `indices`.
    public init(_ base: ImageSource, indices: [Int], labelMap: [Int: Int], classNames: [String]) {
        self.base = base; self.indices = indices; self.classNames = classNames
        labels = indices.map { labelMap[base.label($0)]! }
    }

    public var count: Int { indices.count }
    public func label(_ i: Int) -> Int { labels[i] }
    public func name(_ i: Int) -> String { base.name(indices[i]) }
    public func image(_ i: Int) throws -> RGBImage { try base.image(indices[i]) }
}
