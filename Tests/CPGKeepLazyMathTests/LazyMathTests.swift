import CPGKeepLazyMath
import Glibc
import Testing

/// pgkeep's own definitions of libm's functions (Sources/CPGKeepLazyMath), linked into this test
/// binary as into pgkeep: each one, found by name in the executable, answers exactly as libm's
/// own, found in libm.so.6 — the rounding ones on the CPU's instruction in every rounding mode,
/// the others forwarded. (That pgkeep itself no longer loads libm is the package test's.)
@Suite struct LazyMathTests {
    nonisolated(unsafe) private static let libm = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL)

    /// The executable's definition and libm's, by name; they must be two functions.
    private func pair<F>(_ name: String, _: F.Type) throws -> (ours: F, libm: F) {
        let ours = try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), name), "\(name) not in the executable")
        let theirs = try #require(dlsym(Self.libm, name), "\(name) not in libm")
        #expect(ours != theirs, "\(name) is libm's own: the executable does not define it")
        return (unsafeBitCast(ours, to: F.self), unsafeBitCast(theirs, to: F.self))
    }

    /// The same value, bit for bit (so -0.0 is not 0.0), or both NaN.
    private func identical<T: BinaryFloatingPoint>(_ a: T, _ b: T) -> Bool {
        (a == b && a.sign == b.sign) || (a.isNaN && b.isNaN)
    }

    private static let doubles: [Double] = [
        0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994, 0.5000000000000001,
        1.0000000000000002, -1.0000000000000002, 123.456, -123.456, 4503599627370495.5, -4503599627370495.5,
        4503599627370497, 9007199254740991, 1e300, -1e300, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, .infinity, -.infinity, .nan,
    ]

    @Test("ceil, floor, trunc, rint, nearbyint and round (double and float) round as libm's, bit for bit, in every rounding mode")
    func rounding() throws {
        #if arch(x86_64)
        #expect(pgkeep_math_rounds_in_hardware() == 1, "this machine's CPU has SSE4.1: the instruction is what is tested")
        #endif
        typealias D = @convention(c) (Double) -> Double
        typealias F = @convention(c) (Float) -> Float
        let names = ["ceil", "floor", "trunc", "rint", "nearbyint", "round"]
        let doubles = try names.map { ($0, try pair($0, D.self)) }
        let floats = try names.map { ($0 + "f", try pair($0 + "f", F.self)) }
        let floatValues = Self.doubles.map { Float($0) } + [8388607.5, -8388607.5, 0.49999997, 8388609, 16777215]
        let modes: [Int32] = [FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO]
        for mode in modes {
            #expect(fesetround(mode) == 0)
            defer { fesetround(modes[0]) }
            for (name, (ours, theirs)) in doubles {
                for x in Self.doubles {
                    #expect(identical(ours(x), theirs(x)), "\(name)(\(x)) in rounding mode \(mode): \(ours(x)), libm \(theirs(x))")
                }
            }
            for (name, (ours, theirs)) in floats {
                for x in floatValues {
                    #expect(identical(ours(x), theirs(x)), "\(name)(\(x)) in rounding mode \(mode): \(ours(x)), libm \(theirs(x))")
                }
            }
        }
    }

    @Test("the forwarded functions answer as libm's: one, two and three arguments, out-parameters, Float80, NaN tags")
    func forwarded() throws {
        let xs: [Double] = [0.25, 0.5, 1.5, 3, 10, 123.456, 1e10, -0.75]
        for name in ["cos", "sin", "exp", "exp2", "log", "log10", "log2", "sqrt"] {
            let (ours, theirs) = try pair(name, (@convention(c) (Double) -> Double).self)
            for x in xs { #expect(identical(ours(x), theirs(x)), "\(name)(\(x))") }
        }
        let (powOurs, powTheirs) = try pair("powf", (@convention(c) (Float, Float) -> Float).self)
        #expect(powOurs(1.5, 7.25) == powTheirs(1.5, 7.25))
        let (fmaOurs, fmaTheirs) = try pair("fma", (@convention(c) (Double, Double, Double) -> Double).self)
        #expect(fmaOurs(0.1, 10, -1) == fmaTheirs(0.1, 10, -1))
        let (remquoOurs, remquoTheirs) = try pair("remquo", (@convention(c) (Double, Double, UnsafeMutablePointer<Int32>) -> Double).self)
        var quotient: (Int32, Int32) = (0, 0)
        #expect(remquoOurs(29, 3, &quotient.0) == remquoTheirs(29, 3, &quotient.1))
        #expect(quotient.0 == quotient.1 && quotient.0 != 0)
        let (gammaOurs, gammaTheirs) = try pair("lgamma_r", (@convention(c) (Double, UnsafeMutablePointer<Int32>) -> Double).self)
        var sign: (Int32, Int32) = (0, 0)
        #expect(gammaOurs(-2.5, &sign.0) == gammaTheirs(-2.5, &sign.1))
        #expect(sign.0 == sign.1 && sign.0 == -1)
        let (jnOurs, jnTheirs) = try pair("jn", (@convention(c) (Int32, Double) -> Double).self)
        #expect(jnOurs(3, 2.5) == jnTheirs(3, 2.5))
        let (nanOurs, nanTheirs) = try pair("nanf", (@convention(c) (UnsafePointer<CChar>) -> Float).self)
        #expect(nanOurs("0x123").bitPattern == nanTheirs("0x123").bitPattern)
        #if arch(x86_64)
        let (powlOurs, powlTheirs) = try pair("powl", (@convention(c) (Float80, Float80) -> Float80).self)
        #expect(powlOurs(1.5, 7.25) == powlTheirs(1.5, 7.25))
        #endif
        #expect(pgkeep_math_libm_loaded() == 1)
    }
}
