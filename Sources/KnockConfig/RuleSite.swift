import KnockCore

/// Where a rule was written, so KnockCore's `RuleProblem`s can be placed on lines.
struct RuleSite {
    /// The rule's first line: its `[[rule]]` header, or its knock line in a rules file.
    var line: Int
    /// The line of each field, by the field names `RuleProblem` uses (`knock`, `open_secret`, …).
    var fieldLines: [String: Int] = [:]
    /// What the file called each field, when not the `RuleProblem` name (`open_secret_file`, `--knockports`).
    var fieldNames: [String: String] = [:]
    /// Fields that already have a parse error: their rule problems would only repeat it.
    var erroredFields: Set<String> = []

    func line(for field: String) -> Int { fieldLines[field] ?? line }
    func name(for field: String) -> String { fieldNames[field] ?? field }
}

enum RuleProblems {
    /// Runs KnockCore's checks over `rules` and places each problem on the line of its field.
    ///
    /// `sites[i]` is where `rules[i]` was written.
    static func diagnostics(rules: [Rule], sites: [RuleSite], file: String) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        func add(_ problem: RuleProblem, site: RuleSite) {
            guard !site.erroredFields.contains(problem.field) else { return }
            diagnostics.append(
                ConfigDiagnostic(
                    problem.severity, file: file, line: site.line(for: problem.field), rule: problem.rule,
                    field: site.name(for: problem.field), problem.message))
        }

        var remaining = rules.problems()
        func consume(_ problem: RuleProblem) {
            if let index = remaining.firstIndex(of: problem) { remaining.remove(at: index) }
        }
        for (rule, site) in zip(rules, sites) {
            for problem in rule.problems() {
                consume(problem)
                add(problem, site: site)
            }
        }

        // Duplicate names: reported here, on the later rule, with the line of the first.
        var firstLine: [RuleName: Int] = [:]
        for (rule, site) in zip(rules, sites) {
            let nameLine = site.line(for: "name")
            if let first = firstLine[rule.name] {
                consume(RuleProblem(.error, rule: rule.name.rawValue, field: "name", "duplicate rule name"))
                diagnostics.append(
                    ConfigDiagnostic(
                        file: file, line: nameLine, rule: rule.name.rawValue, field: site.name(for: "name"),
                        "duplicate rule name (first defined on line \(first))"))
            } else {
                firstLine[rule.name] = nameLine
            }
        }

        // What is left is about one rule against another: place it on the first rule of that name.
        for problem in remaining {
            let site = zip(rules, sites).first { $0.0.name.rawValue == problem.rule }?.1 ?? RuleSite(line: 0)
            add(problem, site: site)
        }
        return diagnostics
    }
}
