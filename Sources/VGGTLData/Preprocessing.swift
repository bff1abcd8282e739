/// How 8-bit RGB pixels become the floats a model sees.
public enum Preprocessing: String, Codable, Sendable, CaseIterable {
    /// Keras `vgg16.preprocess_input`: RGB -> BGR, minus the ImageNet BGR means, no scaling.
    case caffe
    /// torchvision: x/255, minus the ImageNet RGB mean, divided by its std.
    case torch
    /// x/255, as the tutorials' `ImageDataGenerator(rescale=1./255)`.
    case rescale
    /// Keras `inception_v3.preprocess_input` (mode 'tf'): x/127.5 - 1, in [-1, 1].
    case tf

    /// Writes height*width*3 floats (HWC) for one image.
    public func apply(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        let n = image.width * image.height
        image.pixels.withUnsafeBufferPointer { src in
            let p = src.baseAddress!
            switch self {
            case .caffe:
                // float32 arithmetic with float32 constants, as numpy does it in Keras.
                let mb: Float = 103.939, mg: Float = 116.779, mr: Float = 123.68
                for i in 0..<n {
                    out[3 * i] = Float(p[3 * i + 2]) - mb
                    out[3 * i + 1] = Float(p[3 * i + 1]) - mg
                    out[3 * i + 2] = Float(p[3 * i]) - mr
                }
            case .torch:
                let mean: (Float, Float, Float) = (0.485, 0.456, 0.406)
                let std: (Float, Float, Float) = (0.229, 0.224, 0.225)
                for i in 0..<n {
                    out[3 * i] = (Float(p[3 * i]) / 255 - mean.0) / std.0
                    out[3 * i + 1] = (Float(p[3 * i + 1]) / 255 - mean.1) / std.1
                    out[3 * i + 2] = (Float(p[3 * i + 2]) / 255 - mean.2) / std.2
                }
            case .rescale:
                let scale = Float(1.0 / 255.0)  // Keras multiplies by rescale=1./255
                for i in 0..<3 * n { out[i] = Float(p[i]) * scale }
            case .tf:
                // float32 as numpy does it in Keras: x /= 127.5; x -= 1.
                for i in 0..<3 * n { out[i] = Float(p[i]) / 127.5 - 1 }
            }
        }
    }

    /// The floats for one image, HWC.
    public func apply(_ image: RGBImage) -> [Float] {
        [Float](unsafeUninitializedCapacity: image.pixels.count) { buffer, count in
            apply(image, into: buffer.baseAddress!)
            count = image.pixels.count
        }
    }
}

/// What a model was trained on; travels with every checkpoint and features file.
public struct InputSpec: Codable, Equatable, Sendable {
    public var height: Int
    public var width: Int
    public var preprocessing: Preprocessing

    public init(height: Int, width: Int, preprocessing: Preprocessing) {
        self.height = height
        self.width = width
        self.preprocessing = preprocessing
    }

    /// Floats per image (height * width * 3).
    public var floatsPerImage: Int { height * width * 3 }

    /// Resizes (Pillow bilinear) to this size and preprocesses: what a prediction on a new
    /// image needs, and what the loader does without augmentation.
    public func prepare(_ image: RGBImage, into out: UnsafeMutablePointer<Float>) {
        preprocessing.apply(resize(image, height: height, width: width), into: out)
    }

    public func prepare(_ image: RGBImage) -> [Float] {
        preprocessing.apply(resize(image, height: height, width: width))
    }
}
