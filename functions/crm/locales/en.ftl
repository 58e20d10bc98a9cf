# The crm plugin's messages to callers (tool results and errors the agent relays). Statuses
# (new, contacted, qualified, lost) are the tools' values and stay as they are.
lead = Lead { $id }
lead-named = Lead { $id } ({ $name })
or-list = { $rest } or { $last }
no-lead = No lead with leadId { $id }. Check the id, or find the lead with GetLeadsByStatus.
not-a-lead-id = '{ $id }' is not a lead id; use the leadId from CreateLead or GetLeadsByStatus.
changed = { $lead } was just changed by someone else, so this change was not made. Check it with GetLead and try again.
duplicate = Lead { $id } is already on file with the same { $shared ->
        [email] email address
       *[phone] phone number
    }. Use leadId { $id } instead of creating a new lead.
saved-meanwhile = Another lead with this email address or phone number was being saved at the same moment. Look for it with GetLeadsByStatus before trying again.
name-needed = The lead's name is required; ask for their full name.
source-needed = Ask how they heard about the business and pass it as source.
email-too-long = That email address is too long to be real; ask for it again.
not-a-phone = '{ $phone }' is not a phone number: it needs { $min } to { $max } digits. Ask for the number again.
contact-needed = A lead needs a phone number or an email address so the team can follow up; ask for at least one.
limit-range = limit must be 1 to { $max }.
pending-qualified = Only qualified leads await approval; use pendingApproval with status qualified.
odd-status = { $lead } has status '{ $status }', which cannot be changed here. Ask a staff member to update it in the CRM.
never-new = No lead can be moved to new; that status is only for leads nobody has acted on yet. Lead { $id } is { $from }; it can be moved to { $next }.
already = Lead { $id } is already { $status }, so nothing was changed.
reopen-first = Lead { $id } is lost. To work on it again, reopen it by moving it to contacted first.
only-to = Lead { $id } is { $from } and can only be moved to { $next }.
now = { $lead } is now { $status }.
awaits-approval = { $lead } is now qualified and awaits a manager's approval; it is listed as qualified once approved.
staff-approves = Approving a lead is for staff: this line's credential lacks the '{ $scope }' scope. Tell the caller a manager will review the lead.
nothing-to-approve = { $lead } is { $status }, not qualified, so there is nothing to approve. Only qualified leads await approval.
already-approved = { $lead } is already approved.
no-approval-needed = { $lead } does not need approval: it is already listed as qualified.
approved = { $lead } is approved and now listed as qualified.
saved-awaiting = Saved { $name } as lead { $id }, qualified since both an email address and a phone number were given. It awaits a manager's approval before it is listed as qualified.
saved-qualified = Saved { $name } as lead { $id }, qualified since both an email address and a phone number were given.
saved-new = Saved { $name } as lead { $id }, with status new.
none-listed = There are no { $pending ->
        [yes] qualified leads awaiting approval
       *[no] { $status } leads
    }.
showing-newest = Showing the newest { $limit } of { $total } { $pending ->
        [yes] qualified leads awaiting approval
       *[no] { $status } leads
    }.
more-awaiting = { $awaiting } more await a manager's approval and are not listed until approved.
