import Foundation
import KnockCore
import Testing

/// ``ReplayHorizon``: what a windowed replay memory may have forgotten.
@Suite struct ReplayHorizonTests {
    @Test func aNewMemoryRefusesNothing() {
        let horizon = ReplayHorizon(windowSeconds: 60)
        #expect(horizon.admits(Int64.min))
        #expect(horizon.forgottenBefore == Int64.min)
    }

    @Test func aWiderWindowRefusesWhatTheNarrowerForgotUntilItMovesPast() {
        var narrow = ReplayHorizon(windowSeconds: 60)
        narrow.forget(before: 1_000)
        var wide = ReplayHorizon(windowSeconds: 300, continuing: narrow)
        #expect(!wide.admits(999))
        #expect(wide.admits(1_000))
        // The wider window's own pruning reaches the floor: the clock check alone is enough again.
        wide.forget(before: 999)
        #expect(!wide.admits(999))
        wide.forget(before: 1_000)
        #expect(wide.admits(999))
        #expect(wide.forgottenBefore == 1_000)
    }

    @Test func theSameOrANarrowerWindowSetsNoFloor() {
        var saved = ReplayHorizon(windowSeconds: 120)
        saved.forget(before: 5_000)
        // No floor: after a backward clock step the clock check decides, as without a restart.
        #expect(ReplayHorizon(windowSeconds: 120, continuing: saved).admits(4_000))
        #expect(ReplayHorizon(windowSeconds: 60, continuing: saved).admits(4_000))
        #expect(ReplayHorizon(windowSeconds: 60, continuing: saved).forgottenBefore == 5_000)
    }

    @Test func aFloorSurvivesAChainOfReloads() {
        var narrow = ReplayHorizon(windowSeconds: 60)
        narrow.forget(before: 1_000)
        let wide = ReplayHorizon(windowSeconds: 300, continuing: narrow)
        // Narrowing again keeps the floor that is still in force.
        let back = ReplayHorizon(windowSeconds: 60, continuing: wide)
        #expect(!back.admits(999))
        let wider = ReplayHorizon(windowSeconds: 600, continuing: back)
        #expect(!wider.admits(999))
    }

    @Test func roundTripsThroughJSON() throws {
        var narrow = ReplayHorizon(windowSeconds: 60)
        narrow.forget(before: 1_764_072_000)
        var horizon = ReplayHorizon(windowSeconds: 300, continuing: narrow)
        horizon.forget(before: 1_764_071_800)
        let data = try JSONEncoder().encode(horizon)
        #expect(String(decoding: data, as: UTF8.self).contains("\"refused_before\":1764072000"))
        #expect(try JSONDecoder().decode(ReplayHorizon.self, from: data) == horizon)
    }
}
