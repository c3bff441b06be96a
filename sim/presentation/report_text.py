"""The report's words and look: its style sheet and its glossary, every technical term it
uses in words a school board reads. Plain data, kept apart from the report's builders
(``sim.presentation.report``) so that the words can be read and edited in one place.
"""

from __future__ import annotations

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}.wide td{white-space:nowrap}
details{margin:1em 0}summary{cursor:pointer;font-weight:600}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap;
font-variant-numeric:tabular-nums}div.wide{overflow-x:auto}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}.lead{color:#444}.note{font-size:.85em;color:#555}
ul.summary li{margin-bottom:.5em}code{background:#f5f5f5;padding:0 .2em}
dl.glossary dt{font-weight:600;margin-top:.6em}dl.glossary dd{margin-left:1.2em}
"""
# every technical term the report uses, in words a school board reads (the glossary)
GLOSSARY = (
    ("strategy (arm)", "One way of running the program grades, e.g. the personalized "
     "playlist with a floor. Each strategy is run on the same synthetic students; its "
     "short label in the scenario file is given in What was run."),
    ("baseline", "The strategy every other one is compared with (by default the first)."),
    ("growth", "How much a student learns in a school year: the fall-to-spring gain on the "
     "vertical scale, in SD units."),
    ("SD units", "Standard deviations of the state's fall scores: 1 SD is the spread of "
     "students' scores in a typical grade, so a change of 0.10 SD is a tenth of that "
     "spread (a sizeable effect for a school program)."),
    ("proficiency (proficient)", "The share of students at or above the state test's "
     "proficiency cut in the spring. Changes are in percentage points: from 25% to 27% "
     "is +2 points."),
    ("program grades", "The grades where the strategies apply; every figure is about "
     "their students, including students of schools that dropped the program."),
    ("replicate", "One run of the whole district with freshly drawn students and "
     "events. Several replicates show how much results vary by chance."),
    ("95% interval", "The range, across replicates, in which the true average lies with "
     "95% confidence (brackets after a number). A wide interval means an uncertain "
     "number."),
    ("paired interval", "The 95% interval of a difference between two strategies "
     "computed replicate by replicate on the same students, so that chance differences "
     "between districts cancel. When it excludes zero the difference is called clear "
     "(better or worse); when it spans zero, no clear difference."),
    ("starting band", "Students grouped by how far from their grade they started when "
     "they entered: 3 or more years below, 1 to 3 years below, within a year of grade "
     "level (on grade), or a year or more above. Bands with under a tenth of the "
     "students are shown but not singled out in the summaries."),
    ("floor", "The furthest below grade level the playlist may send a student's content "
     "(a floor of 3: at most 3 years below grade)."),
    ("ceiling", "The furthest above grade level content may go."),
    ("rising (gradual) floor", "A floor that starts below grade and rises to grade level "
     "by the state test."),
    ("test-prep window", "Weeks before the state test when every student works on "
     "grade-level content only."),
    ("grade-level time, mastered time", "Shares of school days spent on content of the "
     "student's own grade, and on skills the student had already mastered."),
    ("switches", "How often a student is moved between personalized and grade-level "
     "content in a year."),
    ("value-added", "A teacher's rating estimated from their students' test-score gains; "
     "it is noisy, so some teachers land in the wrong rating band."),
    ("rating bands", "The categories teachers are rated into from value-added and a "
     "classroom observation, by fixed cut scores (ineffective, developing, effective, highly "
     "effective; most teachers are rated effective, as in real evaluation systems). 'Rated "
     "in the wrong band' means a teacher's band "
     "differs from the band of their true effect."),
    ("true teacher effect", "How much a teacher actually adds to students' learning in "
     "the simulation, in student SD; known here, never in a real district."),
    ("teacher stress", "A teacher's strain on a 0-1 scale (0 none, 1 the most); "
     "stressed teachers are more likely to leave."),
    ("program survival, program review", "Whether schools keep running the program. A "
     "strategy with a review has each school judge the program after some years and "
     "possibly drop it; without a review no school drops it."),
    ("frontier", "The trade-off between growth and proficiency: the strategies for which "
     "no other strategy is better on both."),
    ("common random numbers", "Every strategy of a replicate sees the same students and "
     "the same random events, so differences between strategies are the policy's."),
    ("plausible model, robust", "A plausible model is a parameter set consistent with every "
     "calibration fact (plsim calibrate --ensemble); a run given an ensemble of them runs "
     "every strategy under each. A comparison is robust when it keeps its direction in "
     "every plausible model."),
)
