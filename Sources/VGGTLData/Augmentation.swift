import Foundation
import VGGTLTensors

/// Random geometric augmentation with Keras `ImageDataGenerator` semantics:
/// `rotation_range` (degrees, uniform in [-r, r]), `width_shift_range` / `height_shift_range`
/// (a fraction of the width/height when < 1, else pixels; uniform in [-f, f]), `shear_range`
/// (degrees, as Keras 2), `zoom_range` z (zx, zy independently uniform in [1-z, 1+z]),
/// `horizontal_flip` (p = 0.5), `fill_mode="nearest"`. The transform is one affine map about
/// the image centre sampled bilinearly (Keras' apply_affine_transform, order=1). `padCrop` p is
/// the CIFAR-10 training recipe's RandomCrop(padding=p): zero-pad by p pixels and crop back at a
/// random offset. The loader applies all of it after resizing to the target size and before
/// preprocessing.
public struct Augmentation: Codable, Equatable, Sendable {
    public var rotation: Float
    public var widthShift: Float
    public var heightShift: Float
    public var shear: Float
    public var zoom: Float
    public var horizontalFlip: Bool
    /// Pixels of zero padding around the image before a random crop back to its size (0: none).
    public var padCrop: Int

    public init(rotation: Float = 0, widthShift: Float = 0, heightShift: Float = 0, shear: Float = 0,
                zoom: Float = 0, horizontalFlip: Bool = false, padCrop: Int = 0) {
        self.padCrop = padCrop
        self.rotation = rotation
        self.widthShift = widthShift
        self.heightShift = heightShift
        self.shear = shear
        self.zoom = zoom
        self.horizontalFlip = horizontalFlip
    }

    /// The Keras fine-tuning tutorial's generator (its shear_range=0.2 is 0.2 degrees in Keras 2).
    public static let tutorial = Augmentation(rotation: 40, widthShift: 0.2, heightShift: 0.2, shear: 0.2,
                                              zoom: 0.2, horizontalFlip: true)

    /// The CIFAR-10 training recipe (torchvision RandomCrop(32, padding=4) + RandomHorizontalFlip):
    /// shifts of up to 4 pixels with black borders, and flips.
    public static let cifar = Augmentation(horizontalFlip: true, padCrop: 4)

    /// Named presets for `--augment`.
    public static let presets: [String: Augmentation] = ["keras": tutorial, "cifar": cifar, "none": Augmentation()]

    /// True when no parameter does anything.
    public var isIdentity: Bool {
        rotation == 0 && widthShift == 0 && heightShift == 0 && shear == 0 && zoom == 0 && !horizontalFlip && padCrop == 0
    }

    /// "rotation 40, shift 0.2, ..." for logs: the parameters that do something.
    public var summary: String {
        var parts: [String] = []
        if rotation != 0 { parts.append("rotation \(rotation)") }
        if widthShift != 0 || heightShift != 0 { parts.append(widthShift == heightShift ? "shift \(widthShift)" : "shift \(heightShift)x\(widthShift)") }
        if shear != 0 { parts.append("shear \(shear)") }
        if zoom != 0 { parts.append("zoom \(zoom)") }
        if horizontalFlip { parts.append("flip") }
        if padCrop != 0 { parts.append("pad-crop \(padCrop) px") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    /// One concrete transform, as Keras' `get_random_transform` returns it.
    public struct Transform: Equatable, Sendable {
        /// Degrees, counter-clockwise.
        public var rotation: Double
        /// Pixels along rows (Keras `tx`) and columns (Keras `ty`). As in Keras, output pixel
        /// (r, c) reads input (r + heightShift, c + widthShift): positive shifts move content
        /// up and left.
        public var heightShift: Double
        public var widthShift: Double
        /// Degrees.
        public var shear: Double
        /// Keras `zx` scales row coordinates, `zy` column coordinates (> 1 zooms out).
        public var zoomRows: Double
        public var zoomColumns: Double
        public var flipHorizontal: Bool
        /// The pad-crop offset: output pixel (r, c) is the flipped, transformed image's
        /// (r + cropRows, c + cropColumns), black outside.
        public var cropRows: Int
        public var cropColumns: Int

        public init(rotation: Double = 0, heightShift: Double = 0, widthShift: Double = 0, shear: Double = 0,
                    zoomRows: Double = 1, zoomColumns: Double = 1, flipHorizontal: Bool = false, cropRows: Int = 0, cropColumns: Int = 0) {
            self.cropRows = cropRows
            self.cropColumns = cropColumns
            self.rotation = rotation
            self.heightShift = heightShift
            self.widthShift = widthShift
            self.shear = shear
            self.zoomRows = zoomRows
            self.zoomColumns = zoomColumns
            self.flipHorizontal = flipHorizontal
        }

        public static let identity = Transform()
    }

    /// Draws a transform for an image of the given size, in Keras' order: rotation, height
    /// shift, width shift, shear, zx, zy, flip. Disabled parameters draw nothing.
    public func randomTransform(height: Int, width: Int, rng: inout SeededGenerator) -> Transform {
        var t = Transform()
        if rotation != 0 { t.rotation = Double(rng.uniform(-rotation, rotation)) }
        if heightShift != 0 {
            t.heightShift = Double(rng.uniform(-heightShift, heightShift))
            if heightShift < 1 { t.heightShift *= Double(height) }
        }
        if widthShift != 0 {
            t.widthShift = Double(rng.uniform(-widthShift, widthShift))
            if widthShift < 1 { t.widthShift *= Double(width) }
        }
        if shear != 0 { t.shear = Double(rng.uniform(-shear, shear)) }
        if zoom != 0 {
            t.zoomRows = Double(rng.uniform(1 - zoom, 1 + zoom))
            t.zoomColumns = Double(rng.uniform(1 - zoom, 1 + zoom))
        }
        if horizontalFlip { t.flipHorizontal = rng.uniform(0, 1) < 0.5 }
        if padCrop > 0 {
            t.cropRows = Int(rng.next() % UInt64(2 * padCrop + 1)) - padCrop
            t.cropColumns = Int(rng.next() % UInt64(2 * padCrop + 1)) - padCrop
        }
        return t
    }

    public func apply(_ image: RGBImage, rng: inout SeededGenerator) -> RGBImage {
        Augmentation.apply(randomTransform(height: image.height, width: image.width, rng: &rng), to: image)
    }

    /// Applies one transform: Keras' apply_affine_transform (order=1, fill_mode nearest), then
    /// the flip. Output pixels round to the nearest level.
    public static func apply(_ t: Transform, to image: RGBImage) -> RGBImage {
        let moved = applyAffineAndFlip(t, to: image)
        return t.cropRows == 0 && t.cropColumns == 0 ? moved : shifted(moved, rows: t.cropRows, columns: t.cropColumns)
    }

    /// Pad-crop: output (r, c) = input (r + rows, c + columns), black outside the image.
    static func shifted(_ image: RGBImage, rows dr: Int, columns dc: Int) -> RGBImage {
        let h = image.height, w = image.width
        var out = [UInt8](repeating: 0, count: h * w * 3)
        let c0 = max(0, -dc), c1 = min(w, w - dc)
        if c1 > c0 {
            for r in max(0, -dr)..<max(max(0, -dr), min(h, h - dr)) {
                let src = ((r + dr) * w + c0 + dc) * 3, dst = (r * w + c0) * 3
                out[dst..<(dst + (c1 - c0) * 3)] = image.pixels[src..<(src + (c1 - c0) * 3)]
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    static func applyAffineAndFlip(_ t: Transform, to image: RGBImage) -> RGBImage {
        let h = image.height, w = image.width
        if h == 0 || w == 0 { return image }
        // 3x3 matrices on (row, col, 1), composed as Keras does: rotation . shift . shear . zoom.
        typealias M = [[Double]]
        func mul(_ a: M, _ b: M) -> M {
            (0..<3).map { i in (0..<3).map { j in (0..<3).reduce(0) { $0 + a[i][$1] * b[$1][j] } } }
        }
        var m: M = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        var affine = false
        if t.rotation != 0 {
            let th = t.rotation * .pi / 180
            m = mul(m, [[cos(th), -sin(th), 0], [sin(th), cos(th), 0], [0, 0, 1]])
            affine = true
        }
        if t.heightShift != 0 || t.widthShift != 0 {
            m = mul(m, [[1, 0, t.heightShift], [0, 1, t.widthShift], [0, 0, 1]])
            affine = true
        }
        if t.shear != 0 {
            let sh = t.shear * .pi / 180
            m = mul(m, [[1, -sin(sh), 0], [0, cos(sh), 0], [0, 0, 1]])
            affine = true
        }
        if t.zoomRows != 1 || t.zoomColumns != 1 {
            m = mul(m, [[t.zoomRows, 0, 0], [0, t.zoomColumns, 0], [0, 0, 1]])
            affine = true
        }
        if !affine && !t.flipHorizontal { return image }
        // About the centre (transform_matrix_offset_center).
        let oy = Double(h) / 2 - 0.5, ox = Double(w) / 2 - 0.5
        m = mul(mul([[1, 0, oy], [0, 1, ox], [0, 0, 1]], m), [[1, 0, -oy], [0, 1, -ox], [0, 0, 1]])

        let a00 = m[0][0], a01 = m[0][1], b0 = m[0][2], a10 = m[1][0], a11 = m[1][1], b1 = m[1][2]
        var out = [UInt8](repeating: 0, count: h * w * 3)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!
                for r in 0..<h {
                    for c in 0..<w {
                        // The flip comes after the affine map in Keras, so column c of the
                        // result is column w-1-c of the transformed image.
                        let d = dst.baseAddress! + (r * w + (t.flipHorizontal ? w - 1 - c : c)) * 3
                        if !affine {
                            let q = s + (r * w + c) * 3
                            d[0] = q[0]; d[1] = q[1]; d[2] = q[2]
                            continue
                        }
                        let rd = Double(r), cd = Double(c)
                        // fill_mode nearest: clamp the coordinate to the image.
                        let y = min(max(a00 * rd + a01 * cd + b0, 0), Double(h - 1))
                        let x = min(max(a10 * rd + a11 * cd + b1, 0), Double(w - 1))
                        let y0 = Int(y), x0 = Int(x)
                        let y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
                        let fy = y - Double(y0), fx = x - Double(x0)
                        let w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx, w10 = fy * (1 - fx), w11 = fy * fx
                        let p00 = s + (y0 * w + x0) * 3, p01 = s + (y0 * w + x1) * 3
                        let p10 = s + (y1 * w + x0) * 3, p11 = s + (y1 * w + x1) * 3
                        for ch in 0..<3 {
                            let v = w00 * Double(p00[ch]) + w01 * Double(p01[ch]) + w10 * Double(p10[ch]) + w11 * Double(p11[ch])
                            d[ch] = UInt8(min(max(v + 0.5, 0), 255))
                        }
                    }
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}
