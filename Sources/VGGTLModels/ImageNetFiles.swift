import Foundation
import VGGTLTensors
import VGGTLIO

/// The ImageNet files of the backbones (each gives its own: `Backbone.imageNetFile`).
extension ImageNetWeights {
    /// The trunks Keras publishes ImageNet weights for (VGG16, ResNet50 v1, InceptionV3).
    public static var trunks: [ModelConfig.Trunk] { Backbones.all.filter { $0.imageNetFile(includeTop: false) != nil }.map(\.trunk) }

    /// The file for a trunk and include_top; nil for trunks Keras has no weights for.
    public static func file(for trunk: ModelConfig.Trunk, includeTop: Bool) -> File? {
        trunk.backbone?.imageNetFile(includeTop: includeTop)
    }

    static func requireFile(_ trunk: ModelConfig.Trunk, includeTop: Bool) throws -> File {
        guard let f = file(for: trunk, includeTop: includeTop) else {
            throw VGGTLError.noImageNetWeights(model: trunk.rawValue, publishedFor: trunks.map(\.rawValue))
        }
        return f
    }

    public static func fileName(includeTop: Bool, trunk: ModelConfig.Trunk = .vgg16) -> String {
        file(for: trunk, includeTop: includeTop)?.name ?? ""
    }

    /// The file hashes in keras/applications/{vgg16,resnet,inception_v3}.py.
    public static func md5(includeTop: Bool, trunk: ModelConfig.Trunk = .vgg16) -> String {
        file(for: trunk, includeTop: includeTop)?.md5 ?? ""
    }

    /// The local path of the trunk's file (an error for trunks Keras has no file for), downloading
    /// it when no cache has it: see `resolve(_:...)`.
    public static func resolve(includeTop: Bool, trunk: ModelConfig.Trunk = .vgg16, cacheDirectory: URL? = nil, kerasHome: URL? = nil,
                               baseURL: URL? = nil, expectedMD5: String? = nil, verifyCached: Bool = false, progress: Bool = true,
                               downloader: Downloader? = nil) throws -> URL {
        try resolve(try requireFile(trunk, includeTop: includeTop), cacheDirectory: cacheDirectory, kerasHome: kerasHome, baseURL: baseURL, expectedMD5: expectedMD5,
                    verifyCached: verifyCached, progress: progress, downloader: downloader)
    }
}
